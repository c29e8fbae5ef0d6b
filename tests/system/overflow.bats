#!/usr/bin/env bats
# overflow.bats: a burst that overflows the kernel event queue loses nothing and repeats
# nothing: ferry rescans, and every one of 100,000 files is reported ready exactly once.

load helpers

N=100000

# burst DIR: creates DIR/f000001 .. DIR/f100000 as fast as coreutils can (touch opens with
# O_CREAT|O_WRONLY and closes: create + close_write per file), 1000 names per process.
burst() {
        (cd "$1" && seq -f 'f%06g' 1 "$N" | xargs -n 1000 touch --)
}

# stopped_burst OUTPUT-OPTION...: `ferry watch --events close_write` on $T/in, output to
# $T/out, stopped while 20,000 files are made: a stopped watcher cannot read, and that
# overflows the default queue (16,384).
stopped_burst() {
        mkdir "$T/in"
        start_ferry "$T/out" watch --events close_write "$@" "$T/in"
        wait_watches "$FERRY_PID" 1 30
        kill -STOP "$FERRY_PID"
        (cd "$T/in" && seq -f 'f%05g' 1 20000 | xargs touch)
        kill -CONT "$FERRY_PID"
}

# expected_paths DIR OUT: the N paths as NUL records.
expected_paths() {
        seq -f "$1/f%06g" 1 "$N" | tr '\n' '\0' >"$2"
}

@test "overflow: 100,000 files in a burst with a tiny queue, -0 --ready: each path exactly once" {
        with_sysctl fs.inotify.max_queued_events 128
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch --ready -0 "$D"
        probe_until_seen "$D" "$T/out"

        burst "$D"

        # Wait for the 100,000 files (plus probes), then for a probe written after them, so a
        # late duplicate from a rescan would be in the output too.
        wait_for has_records_besides_probes "$T/out" "$N" 120 ||
                echo "only $(count_nul_besides_probes "$T/out") files reported after 120 s" >&2
        end_probe "$D" "$T/out" write 60
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        expected_paths "$D" "$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "overflow: the same burst with --json shows a rescan event and every file ready once" {
        with_sysctl fs.inotify.max_queued_events 128
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch --ready --json "$D"
        probe_until_seen "$D" "$T/out"

        # ferry may keep up with the writer even with a tiny queue; stopped during the
        # burst, it cannot: the overflow is certain.
        kill -STOP "$FERRY_PID"
        burst "$D"
        kill -CONT "$FERRY_PID"

        wait_for has_lines_besides_probes "$T/out" "$N" 120 ||
                echo "only $(count_lines_besides_probes "$T/out") lines after 120 s" >&2
        end_probe "$D" "$T/out" write 60
        stop_ferry "$T/out"

        strip_probes_lines "$T/out" "$T/events"
        json_paths "$T/events" ready "$T/got" >"$T/counts"
        cat "$T/counts"
        # The queue of 128 events cannot hold this burst of a stopped reader: the run must
        # have overflowed, and ferry must have said so.
        grep -qE '^rescan [1-9][0-9]*$' "$T/counts" || {
                echo "no rescan event in the --json output: the overflow was not reported" >&2
                return 1
        }
        expected_paths "$D" "$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "overflow: --events close_write loses nothing either (rescan reports complete files as close_write)" {
        stopped_burst --format '%e %p\0'
        wait_for has_nul_records "$T/out" 20001 120
        stop_ferry "$T/out"
        grep -zc '^rescan' "$T/out" >/dev/null || { echo "no rescan event: the queue did not overflow" >&2; return 1; }
        grep -z '^close_write ' "$T/out" | sed -z 's/^close_write //' >"$T/got"
        (cd "$T/in" && seq -f "$T/in/f%05g" 1 20000 | tr '\n' '\0') >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "overflow: a --format without %e leaves the rescan out of the output (no empty line) and says it on stderr" {
        stopped_burst --format '%p\n'
        wait_for has_lines "$T/out" 20000 120
        stop_ferry "$T/out"
        assert_log_has "$T/out" "event queue overflowed: rescanning the watched folders"
        if grep -qn '^$' "$T/out"; then
                echo "empty lines in the output, at: $(grep -n '^$' "$T/out" | head -3 | tr '\n' ' ')" >&2
                return 1
        fi
        seq -f "$T/in/f%05g" 1 20000 >"$T/want"
        sort -u "$T/out" >"$T/got"
        assert_same_file "$T/want" "$T/got"
}

@test "overflow: --events close_write while the writer goes on after the overflow: each file's close once, none told twice; a rewrite told" {
        # The rescan lists files whose closes the kernel still holds in its queue (they came
        # after the overflow); ferry must not tell those closes again.
        with_sysctl fs.inotify.max_queued_events 1024
        mkdir "$T/in"
        start_ferry "$T/out" watch --events close_write --format '%e %p\0' "$T/in"
        probe_until_seen "$T/in" "$T/out"
        kill -STOP "$FERRY_PID"
        (cd "$T/in" && seq -f 'f%05g' 1 5000 | xargs touch)
        kill -CONT "$FERRY_PID"
        (cd "$T/in" && seq -f 'f%05g' 5001 40000 | xargs -n 200 touch)
        wait_for has_records_besides_probes "$T/out" 40001 120 ||
                echo "only $(count_nul_besides_probes "$T/out") records after 120 s" >&2
        # Written again afterwards: a new close, told (only the same version's close is not); f04000
        # was made while the queue was full: the rescan told its close.
        echo again >>"$T/in/f04000"
        echo again >>"$T/in/f39999"
        end_probe "$T/in" "$T/out" write 60
        stop_ferry "$T/out"
        strip_probes_nul "$T/out" "$T/events"
        grep -zc '^rescan' "$T/events" >/dev/null || { echo "no rescan event: the queue did not overflow" >&2; return 1; }
        grep -z '^close_write ' "$T/events" | sed -z 's/^close_write //' >"$T/got"
        { seq -f "$T/in/f%05g" 1 40000 && echo "$T/in/f04000" && echo "$T/in/f39999"; } | tr '\n' '\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}
