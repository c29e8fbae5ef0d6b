"""test_watch: ferry.Watch, ferry.wait and ferry.put against the library in the build tree."""

import asyncio
import errno
import os
import re
import selectors
import threading
import time
from pathlib import Path

import pytest

import ferry

REPO = Path(__file__).resolve().parents[2]


def events_until(watch, want_type, path_bytes, timeout=10):
    """Events of watch until one of want_type about path_bytes (included); fails after timeout."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = watch.next_event(deadline - time.monotonic())
        if event is None:
            break
        seen.append(event)
        if event.type == want_type and event.path_bytes == path_bytes:
            return seen
    pytest.fail(f"no {want_type} of {path_bytes!r} within {timeout} s; saw {seen}")


def test_version_matches_the_header_the_makefile_and_the_project():
    header = (REPO / "include" / "ferry.h").read_text()
    assert re.search(r'#define FERRY_VERSION "([^"]+)"', header).group(1) == ferry.__version__
    assert re.search(r"^VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M).group(1) == ferry.__version__
    project = (REPO / "python" / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"$', project, re.M).group(1) == ferry.__version__


def test_a_folder_beyond_max_dirs_comes_as_an_error_event_with_an_explanation(tmp_path):
    (tmp_path / "sub").mkdir()
    with ferry.Watch(tmp_path, recursive=True, max_dirs=1) as watch:
        event = watch.next_event(5)
    assert event is not None and event.type == "error", event
    assert event.error == errno.EDQUOT and event.path == str(tmp_path / "sub")
    assert event.message and str(tmp_path / "sub") in event.message


def test_events_of_a_name_with_a_newline_and_a_byte_that_is_not_utf8(tmp_path):
    folder = os.fsencode(tmp_path)
    name = folder + b"/a\nb\xff.txt"
    with ferry.Watch(tmp_path) as watch:
        with open(name, "wb") as f:
            f.write(b"data")
        seen = events_until(watch, "close_write", name)
    kinds = [e.type for e in seen if e.path_bytes == name]
    assert kinds[0] == "create" and kinds[-1] == "close_write"
    last = seen[-1]
    assert last.path_bytes == name
    assert os.fsencode(last.path) == name  # the str form round-trips to the exact bytes
    assert last.root == str(tmp_path) and not last.is_dir and last.error == 0 and last.size is None


def test_next_event_returns_none_on_timeout(tmp_path):
    with ferry.Watch(tmp_path) as watch:
        start = time.monotonic()
        assert watch.next_event(timeout=0.2) is None
        assert time.monotonic() - start >= 0.15


def test_moved_to_carries_the_old_path(tmp_path):
    (tmp_path / "old").write_bytes(b"x")
    with ferry.Watch(tmp_path, events=["moved_to"]) as watch:
        os.rename(tmp_path / "old", tmp_path / "new")
        event = watch.next_event(5)
    assert event is not None and event.type == "moved_to"
    assert event.path == str(tmp_path / "new") and event.old_path == str(tmp_path / "old")


def test_fileno_with_selectors(tmp_path):
    with ferry.Watch(tmp_path, ready="rename") as watch, selectors.DefaultSelector() as selector:
        selector.register(watch, selectors.EVENT_READ)
        assert watch.next_event(0) is None
        (tmp_path / ".part").write_bytes(b"whole")
        os.rename(tmp_path / ".part", tmp_path / "done.bin")
        got = []
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                while (event := watch.next_event(0)) is not None:
                    got.append(event)
    assert [(e.type, e.path, e.size) for e in got] == [("ready", str(tmp_path / "done.bin"), 5)]


def test_asyncio_add_reader_gets_a_ready_event(tmp_path):
    async def main():
        loop = asyncio.get_running_loop()
        ready = asyncio.Queue()
        with ferry.Watch(tmp_path, ready="close") as watch:
            def readable():
                while (event := watch.next_event(0)) is not None:
                    ready.put_nowait(event)

            loop.add_reader(watch.fileno(), readable)
            try:
                # The writer runs in the loop too: no thread anywhere.
                loop.call_later(0.05, (tmp_path / "report.csv").write_bytes, b"a,b\n")
                return await asyncio.wait_for(ready.get(), 10)
            finally:
                loop.remove_reader(watch.fileno())

    event = asyncio.run(main())
    assert event.type == "ready" and event.path == str(tmp_path / "report.csv") and event.size == 4


def test_include_and_exclude(tmp_path):
    with ferry.Watch(tmp_path, ready="close", include=["*.csv"], exclude="skip*") as watch:
        for name in ("skip.csv", "a.txt", "b.csv"):
            (tmp_path / name).write_bytes(b"x")
        event = watch.next_event(10)
        assert event is not None and event.path == str(tmp_path / "b.csv")
        assert watch.next_event(0.5) is None


def test_bad_options_and_folders_raise(tmp_path):
    with pytest.raises(ValueError, match="ready policy"):
        ferry.Watch(tmp_path, ready="whenever")
    with pytest.raises(FileNotFoundError) as raised:
        ferry.Watch(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(raised.value)
    watch = ferry.Watch(tmp_path)
    watch.close()
    with pytest.raises(ValueError):
        watch.next_event(0)


def test_wait_for_a_file_written_later_by_a_thread(tmp_path):
    target = tmp_path / "later" / "result.json"
    target.parent.mkdir()

    def write():
        time.sleep(0.3)
        with open(target.parent / "result.json.tmp", "wb") as f:
            f.write(b"{}\n")
        os.rename(target.parent / "result.json.tmp", target)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert ferry.wait(target, timeout=10) == str(target)
    finally:
        writer.join()
    # Already there and complete: counts at once (a wait for a new event would time out).
    assert ferry.wait(target, timeout=10, ready="rename") == str(target)


def test_wait_times_out(tmp_path):
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        ferry.wait(tmp_path / "never", timeout=0.3)
    assert time.monotonic() - start >= 0.25


def test_put_with_a_marker(tmp_path):
    source = tmp_path / "src.csv"
    source.write_bytes(b"1,2,3\n" * 1000)
    (tmp_path / "out").mkdir()
    assert ferry.put(source, tmp_path / "out", marker=True) == str(tmp_path / "out" / "src.csv")
    assert (tmp_path / "out" / "src.csv").read_bytes() == source.read_bytes()
    marker = (tmp_path / "out" / "src.csv.done").read_text()
    assert "6000" in marker
    assert sorted(os.listdir(tmp_path / "out")) == ["src.csv", "src.csv.done"]
    # A watcher under the done-file policy accepts what put delivered.
    with ferry.Watch(tmp_path / "out", ready="done-file", existing=True) as watch:
        event = watch.next_event(10)
    assert event is not None and event.type == "ready" and event.path == str(tmp_path / "out" / "src.csv")


def test_put_reports_progress_and_a_raising_callback_stops_the_copy(tmp_path):
    source = tmp_path / "big"
    source.write_bytes(os.urandom(1024 * 1024 + 17))
    (tmp_path / "out").mkdir()
    seen = []
    ferry.put(source, tmp_path / "out", marker=True, progress=lambda done, total: seen.append((done, total)))
    assert len(seen) == 5 and seen[-1] == (1024 * 1024 + 17, 1024 * 1024 + 17)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and {t for _, t in seen} == {1024 * 1024 + 17}
    assert (tmp_path / "out" / "big").read_bytes() == source.read_bytes()

    class Stop(Exception):
        pass

    def stop(done, total):
        if done >= 512 * 1024:
            raise Stop(done)

    with pytest.raises(Stop):
        ferry.put(source, tmp_path / "out" / "stopped", marker=True, progress=stop)
    # Nothing of the stopped copy is left: no target, no marker, no temporary file.
    assert sorted(os.listdir(tmp_path / "out")) == ["big", "big.done"]


def test_put_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        ferry.put(tmp_path / "missing", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_wait_many_counts_files_already_there_and_new_ones_once_each(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"1")
    (tmp_path / "skip.txt").write_bytes(b"x")

    def write():
        time.sleep(0.3)
        for name in ("b.csv", "c.csv"):
            with open(tmp_path / (name + ".part"), "wb") as f:
                f.write(b"2")
            os.rename(tmp_path / (name + ".part"), tmp_path / name)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        got = ferry.wait_many(tmp_path, match="*.csv", count=3, timeout=20)
    finally:
        writer.join()
    assert sorted(Path(p).name for p in got) == ["a.csv", "b.csv", "c.csv"]
    with pytest.raises(TimeoutError, match="3 of 4 files"):
        ferry.wait_many(tmp_path, match="*.csv", count=4, timeout=0.5)


def test_async_for_hands_out_events_without_a_thread(tmp_path):
    async def main():
        names = []
        with ferry.Watch(tmp_path, ready="close=0") as watch:
            async def write():
                await asyncio.sleep(0.1)
                for i in range(3):
                    (tmp_path / f"f{i}").write_bytes(b"x")

            task = asyncio.create_task(write())
            async for event in watch:
                names.append(Path(event.path).name)
                if len(names) == 3:
                    break
            await task
        return names

    assert sorted(asyncio.run(asyncio.wait_for(main(), 20))) == ["f0", "f1", "f2"]
