"""test_seed: examples/seed/machine_a.py and machine_b.py, the seed's pipeline in
Python on the ferry package, on two local folders (make demo PY=1 runs them on
two hosts): every file enriched once and exactly as examples/enrich does it; a
copy cut off half-way, with the marker of the whole file, never enriched."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import ferry

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "seed"


def test_machine_a_and_b_enrich_each_file_once_and_refuse_a_cut_off_copy(tmp_path):
    outbox, enriched, unenriched, marker = (tmp_path / n for n in ("outbox", "enriched", "unenriched", "marker"))
    for folder in (outbox, enriched, unenriched, marker):
        folder.mkdir()
    files = {"customers.csv": b"id,customer\n1,ACME\n2,Initech\n",
             "orders 2026-11.csv": b"id,order,amount\n17,widgets,42\n",
             "r\xe9sum\xe9.csv".encode("latin-1").decode(errors="surrogateescape"): b"id\n1\n"}
    for name, content in files.items():
        (outbox / name).write_bytes(content)
    whole = b"id,value\n" + b"".join(b"%d,x\n" % i for i in range(2000))
    (outbox / "cut-off.csv").write_bytes(whole)
    ferry.put(outbox / "cut-off.csv", marker, marker=True)
    # The copy that died half-way, its marker written anyway.
    (unenriched / "cut-off.csv").write_bytes(whole[:9000])
    (unenriched / "cut-off.csv.done").write_bytes((marker / "cut-off.csv.done").read_bytes())

    b = subprocess.Popen([sys.executable, str(SEED / "machine_b.py"), str(unenriched), str(enriched)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        a = subprocess.run([sys.executable, str(SEED / "machine_a.py"), str(unenriched), str(enriched),
                            *(str(outbox / name) for name in files)],
                           capture_output=True, timeout=120, env={**os.environ, "TIMEOUT": "60"})
    finally:
        b.send_signal(signal.SIGINT)
        b_out, b_err = b.communicate(timeout=60)
    assert a.returncode == 0, a.stderr.decode()
    for name, content in files.items():
        want = subprocess.run([str(REPO / "examples" / "enrich")], input=content, capture_output=True,
                              check=True).stdout
        assert (enriched / name).read_bytes() == want
        assert b_out.count(b"B: enriched " + os.fsencode(name) + b"\n") == 1, b_out.decode(errors="replace")
    assert not (enriched / "cut-off.csv").exists()
    assert b"cut-off.csv does not match its done-marker" in b_err, b_err.decode(errors="replace")
    # Handled ones are in B's done folder with their markers; the cut-off copy is still waiting.
    done = unenriched / ".ferry" / "done"
    assert sorted(os.listdir(done)) == sorted([*files, *(n + ".done" for n in files)])
    assert (unenriched / "cut-off.csv").exists()
