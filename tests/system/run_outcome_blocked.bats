#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_outcome_blocked.bats: the done or failed folder cannot take a handled file for a while
# (made immutable here, as a read-only or full share would refuse it): the file waits in the
# work area, its outcome noted there, and is moved as soon as the folder takes it again; a
# worker that stops meanwhile leaves it noted as handled, and the next start moves it without
# running the handler again. Every file is handled once, and ends where its outcome says.

load helpers

setup() {
        ferry_setup
        IMMUTABLE=()
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"'"$T"'/handled"' \
                'case $FERRY_NAME in bad*) echo "not this one" >&2; exit 5;; esac' 'exit 0'
}

teardown() {
        local f
        for f in "${IMMUTABLE[@]}"; do chattr -i "$f" 2>/dev/null || true; done
        ferry_teardown
}

# immutable FOLDER: nobody, root included, can add to FOLDER or take from it (chattr +i).
immutable() {
        command -v chattr >/dev/null || skip "chattr is missing (scripts/install-deps test installs e2fsprogs)"
        chattr +i "$1" || skip "this file system has no immutable flag (chattr +i $1)"
        IMMUTABLE+=("$1")
}
writable() { chattr -i "$1"; }

# start_refused: ferry run on $T/in, whose done and failed folders then refuse new files.
start_refused() {
        mkdir "$T/in"
        start_ferry "$T/run" run --retries 0 "$T/in" -- "$T/h.sh"
        wait_run_started "$T/run"
        immutable "$T/in/.ferry/done"
        immutable "$T/in/.ferry/failed"
}

handled_set() {
        printf '%s\0' "$@" >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
}

@test "run: done and failed folders not writable for a while: handled files wait, then move; none handled twice" {
        require_root "makes folders immutable (chattr +i)"
        start_refused
        echo 1 >"$T/in/good1"
        echo 2 >"$T/in/good2"
        echo 3 >"$T/in/bad1"
        wait_nul_records "$T/handled" 3 15
        wait_for has_text "$T/run.err" "good2: handled, but cannot move it to $T/in/.ferry/done (Operation not permitted): it waits in" 10
        wait_for has_text "$T/run.err" "bad1: failed (exit status 5); cannot move it to the failed folder (Operation not permitted): it waits in" 10
        sleep 1.5 # some tries to move them, all refused: still waiting, nothing handled again
        [[ -n $(find "$T/in/.ferry/work" -name good1 -type f) ]]
        writable "$T/in/.ferry/done"
        writable "$T/in/.ferry/failed"
        wait_for file_exists "$T/in/.ferry/done/good1" 10
        wait_for file_exists "$T/in/.ferry/done/good2" 10
        wait_for file_exists "$T/in/.ferry/failed/bad1.ferry-error" 10
        assert_log_has "$T/run" "good1: handled before; moved to $T/in/.ferry/done/good1 now"
        assert_log_has "$T/run" "bad1: handled before; moved to $T/in/.ferry/failed/bad1 now"
        grep -q '^reason: exit status 5$' "$T/in/.ferry/failed/bad1.ferry-error"
        grep -q '^not this one$' "$T/in/.ferry/failed/bad1.ferry-error"
        echo 4 >"$T/in/good3"
        wait_for file_exists "$T/in/.ferry/done/good3" 10
        stop_ferry "$T/run"
        handled_set good1 good2 bad1 good3
        assert_no_claims "$T/in"
        assert_queue_empty "$T/in"
}

@test "run: stopped while the done folder refuses a handled file: the next start moves it, not handling it again" {
        require_root "makes folders immutable (chattr +i)"
        start_refused
        echo 1 >"$T/in/good"
        echo 2 >"$T/in/bad"
        wait_for has_text "$T/run.err" "good: handled, but cannot move it" 15
        wait_for has_text "$T/run.err" "bad: failed (exit status 5); cannot move it" 15
        run "$FERRY" status --dir "$T/in"
        [[ $output == *"handled, to move $T/in/good"* ]] || { echo "status: $output" >&2; false; }
        run "$FERRY" explain --dir "$T/in" "$T/in/good"
        [[ $output == *"handled already; its outcome folder refused it so far"* ]] || { echo "explain: $output" >&2; false; }
        stop_ferry "$T/run"
        assert_log_has "$T/run" "good: handled, and still cannot be moved out (Operation not permitted): it stays in"
        [[ -n $(find "$T/in/.ferry/work" -name good -type f) ]]
        writable "$T/in/.ferry/done"
        writable "$T/in/.ferry/failed"
        start_ferry "$T/run2" run --retries 0 "$T/in" -- "$T/h.sh"
        wait_for file_exists "$T/in/.ferry/done/good" 15
        wait_for file_exists "$T/in/.ferry/failed/bad.ferry-error" 15
        stop_ferry "$T/run2"
        assert_log_has "$T/run2" "good: handled before; moved to $T/in/.ferry/done/good now"
        grep -q '^reason: exit status 5$' "$T/in/.ferry/failed/bad.ferry-error"
        handled_set good bad
        assert_no_claims "$T/in"
}

@test "run: a worker killed while its handled file waits: another worker takes the claim over and only moves it" {
        require_root "makes folders immutable (chattr +i)"
        mkdir "$T/in"
        start_ferry "$T/run" run --retries 0 --lease 2s "$T/in" -- "$T/h.sh"
        wait_run_started "$T/run"
        immutable "$T/in/.ferry/done"
        echo 1 >"$T/in/good"
        wait_for has_text "$T/run.err" "good: handled, but cannot move it" 15
        kill -9 "$FERRY_PID"
        wait_exit "$FERRY_PID" 10
        writable "$T/in/.ferry/done"
        start_ferry "$T/run2" run --retries 0 --lease 2s "$T/in" -- "$T/h.sh"
        wait_for file_exists "$T/in/.ferry/done/good" 15
        stop_ferry "$T/run2"
        assert_log_has "$T/run2" "good: handled before; moved to $T/in/.ferry/done/good now"
        handled_set good
        assert_no_claims "$T/in"
}
