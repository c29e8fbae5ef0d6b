#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_stop.bats: on SIGTERM or SIGINT `ferry run` stops claiming, lets running handlers finish
# within --grace, then sends them SIGTERM; unfinished claims go back to the folder under their
# original names, and ferry exits 0. The next start handles them.

load helpers

@test "run: SIGTERM with a slow handler and --grace 0.3s: handler gets SIGTERM, file returned, exit 0" {
        D=$T/in
        mkdir -p "$D/sub"
        printf 'slow payload\n' >"$D/slow.txt"
        printf 'deep payload\n' >"$D/sub/deep.txt"
        # Records its start, and SIGTERM when it comes; would otherwise run for a minute.
        make_handler "$T/slow.sh" \
                'printf "%s\0" "$FERRY_NAME" >>"$1.started"' \
                'trap "printf \"%s\\0\" \"\$FERRY_NAME\" >>\"\$1.term\"; exit 143" TERM' \
                'sleep 60 &' \
                'wait'
        start_ferry "$T/ferry" run -r -j 2 --grace 0.3s "$D" -- "$T/slow.sh" "$T/slow" {}
        wait_nul_records "$T/slow.started" 2 30
        # Both files are claimed: neither is in its place.
        [[ ! -e $D/slow.txt && ! -e $D/sub/deep.txt ]]

        start=$(now_us)
        kill -TERM "$FERRY_PID"
        wait_exit "$FERRY_PID" 30
        took=$(elapsed_ms "$start")
        FERRY_PID=
        [[ $EXIT_RC -eq 0 ]] || {
                echo "ferry exited $EXIT_RC after SIGTERM, expected 0" >&2
                cat -v "$T/ferry.err" >&2
                return 1
        }
        ((took >= 300)) || {
                echo "ferry stopped the handlers after ${took} ms, before --grace 0.3s" >&2
                return 1
        }
        ((took < 5000 * SLOW)) || {
                echo "ferry took ${took} ms to stop with --grace 0.3s" >&2
                return 1
        }
        # Each handler got SIGTERM.
        [[ $(count_nul "$T/slow.term") -eq 2 ]] || {
                echo "handlers that got SIGTERM: $(count_nul "$T/slow.term") of 2" >&2
                return 1
        }
        # The files are back, intact, under their names; nothing claimed, done or failed.
        printf 'slow payload\n' >"$T/want.slow"
        printf 'deep payload\n' >"$T/want.deep"
        assert_same_file "$T/want.slow" "$D/slow.txt"
        assert_same_file "$T/want.deep" "$D/sub/deep.txt"
        assert_no_claims "$D"
        [[ $(count_files "$D/.ferry/done") -eq 0 && $(count_files "$D/.ferry/failed") -eq 0 ]]
        assert_log_has "$T/ferry" "returned [run] $D/slow.txt"
        assert_log_has "$T/ferry" "returned [run] $D/sub/deep.txt"

        # A second start handles them.
        make_handler "$T/quick.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/ferry2" run -r -j 2 "$D" -- "$T/quick.sh" "$T/handled" {}
        wait_files "$D/.ferry/done" 2 30
        stop_ferry "$T/ferry2"
        printf '%s\0' slow.txt deep.txt >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        assert_same_file "$T/want.slow" "$D/.ferry/done/slow.txt"
        assert_same_file "$T/want.deep" "$D/.ferry/done/sub/deep.txt"
        assert_queue_empty "$D"
        assert_no_claims "$D"
}

@test "run: SIGINT while a handler finishes within --grace: the file is done, not returned; exit 0" {
        D=$T/in
        mkdir "$D"
        printf 'payload\n' >"$D/job.txt"
        make_handler "$T/h.sh" 'echo started >"$1.started"' 'sleep 0.5' 'echo finished >"$1.finished"'
        start_ferry "$T/ferry" run --grace 10s "$D" -- "$T/h.sh" "$T/h" {}
        wait_for file_exists "$T/h.started" 30
        # Files arriving after the signal are not claimed.
        kill -INT "$FERRY_PID"
        printf 'late\n' >"$D/late.txt"
        wait_exit "$FERRY_PID" 30
        FERRY_PID=
        [[ $EXIT_RC -eq 0 ]] || {
                echo "ferry exited $EXIT_RC after SIGINT, expected 0" >&2
                cat -v "$T/ferry.err" >&2
                return 1
        }
        [[ -f $T/h.finished ]]
        [[ -f $D/.ferry/done/job.txt && ! -e $D/job.txt ]]
        [[ -f $D/late.txt ]]
        assert_no_claims "$D"
}

@test "run: SIGTERM while a file waits for its retry: it goes back to the folder, not to failed" {
        D=$T/in
        mkdir "$D"
        printf 'payload\n' >"$D/job.txt"
        make_handler "$T/h.sh" 'echo x >>"$1"' 'exit 1'
        start_ferry "$T/ferry" run --retries 3 --retry-delay 60s "$D" -- "$T/h.sh" "$T/runs" {}
        wait_for has_text "$T/ferry.err" "retry [run] $D/job.txt" 30
        stop_ferry "$T/ferry"

        [[ $(count_lines "$T/runs") -eq 1 ]]
        printf 'payload\n' >"$T/want"
        assert_same_file "$T/want" "$D/job.txt"
        [[ $(count_files "$D/.ferry/failed") -eq 0 ]]
        assert_no_claims "$D"
        assert_log_has "$T/ferry" "returned [run] $D/job.txt"
}
