#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_exactly_once.bats: `ferry run` hands every file to its handler exactly once: files present
# at start and a burst dropped while it runs (renamed in and written in place) each run once,
# each end in the done folder, and nothing stays in the folder or in the work area; also when
# the kernel's event queue overflows and ferry rescans.

load helpers

@test "run: 1,000 files at start and 10,000 dropped while running: each handled exactly once" {
        D=$T/in
        mkdir "$D"
        # $1: the log, $2: the claimed file. A claimed path that is not a file is recorded too.
        make_handler "$T/h.sh" \
                '[ -f "$2" ] || printf "%s\0" "$FERRY_NAME" >>"$1.missing"' \
                'printf "%s\0" "$FERRY_NAME" >>"$1"'
        make_numbered "$D" pre 1 1000
        {
                numbered_names pre 1 1000
                numbered_names new 1 10000
        } >"$T/want"

        start_ferry "$T/ferry" run -j 4 "$D" -- "$T/h.sh" "$T/handled" {}
        wait_run_started "$T/ferry"
        # While the files present at start are being handled: 5,000 renamed in, 5,000 written
        # in place, at the same time.
        drop_numbered "$D" new 1 5000 &
        dropper=$!
        make_numbered "$D" new 5001 10000
        wait "$dropper"

        wait_nul_records "$T/handled" 11000 240
        wait_files "$D/.ferry/done" 11000 60
        stop_ferry "$T/ferry"

        assert_same_nul_set "$T/want" "$T/handled"
        files_nul "$D/.ferry/done" "$T/done"
        assert_same_nul_set "$T/want" "$T/done"
        assert_queue_empty "$D"
        assert_no_claims "$D"
        [[ ! -e $T/handled.missing ]] || {
                echo "the handler was given a claimed path that is not a file for: $(show_nul "$T/handled.missing" | head)" >&2
                return 1
        }
        [[ $(count_files "$D/.ferry/failed") -eq 0 ]] || {
                echo "files in the failed folder:" >&2
                find "$D/.ferry/failed" -type f >&2
                return 1
        }
        if grep -a '^ferry: error' "$T/ferry.err" >&2; then
                echo "ferry logged errors (above)" >&2
                return 1
        fi
        [[ $(grep -ac '^ferry: done \[run\] ' "$T/ferry.err") -eq 11000 ]] || {
                echo "expected 11000 'done' log lines, got $(grep -ac '^ferry: done \[run\] ' "$T/ferry.err")" >&2
                return 1
        }
}

@test "run: a 128-event kernel queue that overflows and rescans: 3,000 files still each handled once" {
        with_sysctl fs.inotify.max_queued_events 128
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        make_numbered "$D" pre 1 500
        {
                numbered_names pre 1 500
                numbered_names new 1 2500
        } >"$T/want"

        start_ferry "$T/ferry" run -j 4 "$D" -- "$T/h.sh" "$T/handled" {}
        wait_run_started "$T/ferry"
        drop_numbered "$D" new 1 1250 &
        dropper=$!
        make_numbered "$D" new 1251 2500
        wait "$dropper"

        wait_nul_records "$T/handled" 3000 120
        wait_files "$D/.ferry/done" 3000 60
        stop_ferry "$T/ferry"
        restore_sysctls

        echo "# queue overflows: $(grep -ac 'overflowed' "$T/ferry.err" || true)" >&3
        assert_same_nul_set "$T/want" "$T/handled"
        files_nul "$D/.ferry/done" "$T/done"
        assert_same_nul_set "$T/want" "$T/done"
        assert_queue_empty "$D"
        assert_no_claims "$D"
}
