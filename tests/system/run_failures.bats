#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_failures.bats: a handler that fails is retried with back-off, then its file goes to the
# failed folder with a NAME.ferry-error sidecar saying why (exit status, signal, timeout,
# attempts, last stderr lines). A timeout stops the handler's whole process group: SIGTERM,
# then SIGKILL.

load helpers

# sidecar_has FILE LINE: the sidecar FILE holds LINE as a whole line; prints it when not.
sidecar_has() {
        if ! has_line "$1" "$2"; then
                echo "sidecar $1 has no line: $2" >&2
                echo "--- sidecar:" >&2
                cat -A -- "$1" >&2 2>/dev/null || echo "(missing)" >&2
                return 1
        fi
}

# stderr_section FILE: the lines of the sidecar FILE after "stderr:".
stderr_section() { sed -n '/^stderr:/,$p' "$1" | tail -n +2; }

setup() {
        ferry_setup
        MOUNTED=
}

teardown() {
        if [[ -n $MOUNTED ]]; then
                umount -l "$MOUNTED" 2>/dev/null || true
        fi
        ferry_teardown
}

# small_tmpfs: a 1 MiB tmpfs on $T/fs (gone at teardown) holding the folder D=$T/fs/in, as
# root; skips where no tmpfs can be mounted.
small_tmpfs() {
        require_root "mounts a small tmpfs"
        mkdir "$T/fs"
        mount -t tmpfs -o size=1m ferry-test "$T/fs" || skip "cannot mount a tmpfs"
        MOUNTED=$T/fs
        D=$T/fs/in
        mkdir "$D"
}

# proc_reaped PID: no /proc entry at all: exited and reaped (not a zombie).
proc_reaped() { [[ ! -e /proc/$1 ]]; }

@test "run: a handler exiting 3 is retried once after --retry-delay, then failed with a sidecar" {
        D=$T/in
        mkdir "$D"
        printf 'payload\n' >"$D/job.txt"
        make_handler "$T/h.sh" \
                'printf "%s %s\n" "$FERRY_ATTEMPT" "$(date +%s%N)" >>"$1"' \
                'echo boom >&2' \
                'exit 3'
        start_ferry "$T/ferry" run -j 2 --retries 1 --retry-delay 0.2s "$D" -- "$T/h.sh" "$T/attempts" {}
        F=$D/.ferry/failed/job.txt
        wait_for file_exists "$F.ferry-error" 30
        wait_for has_text "$T/ferry.err" "failed [run] $D/job.txt" 10
        stop_ferry "$T/ferry"

        # Two runs, attempts 1 and 2, at least the retry delay apart.
        [[ $(cut -d' ' -f1 "$T/attempts" | tr '\n' ' ') == '1 2 ' ]] || {
                echo "attempts seen: $(cat "$T/attempts")" >&2
                return 1
        }
        first=$(sed -n 1p "$T/attempts" | cut -d' ' -f2)
        second=$(sed -n 2p "$T/attempts" | cut -d' ' -f2)
        gap_ms=$(((second - first) / 1000000))
        ((gap_ms >= 200)) || {
                echo "the retry came ${gap_ms} ms after the first attempt, before --retry-delay 0.2s" >&2
                return 1
        }
        # The file, intact, in failed; nothing in done, nothing claimed, nothing left behind.
        printf 'payload\n' >"$T/want"
        assert_same_file "$T/want" "$F"
        [[ $(count_files "$D/.ferry/done") -eq 0 ]]
        assert_queue_empty "$D"
        assert_no_claims "$D"
        # The sidecar says why.
        sidecar_has "$F.ferry-error" "path: $D/job.txt"
        sidecar_has "$F.ferry-error" "rule: run"
        sidecar_has "$F.ferry-error" "reason: exit status 3"
        sidecar_has "$F.ferry-error" "exit-status: 3"
        sidecar_has "$F.ferry-error" "signal: 0"
        sidecar_has "$F.ferry-error" "timed-out: no"
        sidecar_has "$F.ferry-error" "attempts: 2"
        grep -aq '^duration: [0-9.]*s$' "$F.ferry-error"
        grep -aq '^failed-at: [0-9]*$' "$F.ferry-error"
        stderr_section "$F.ferry-error" | grep -qx boom || {
                echo "no 'boom' line after stderr: in the sidecar:" >&2
                cat -A "$F.ferry-error" >&2
                return 1
        }
        # The log: one retry, then failed.
        assert_log_has "$T/ferry" "retry [run] $D/job.txt: failed (exit status 3); retry 1 of 1"
        assert_log_has "$T/ferry" "failed [run] $D/job.txt: failed (exit status 3) after 2 attempts: $F"
        [[ $(grep -ac '^ferry: started \[run\]' "$T/ferry.err") -eq 2 ]]
}

@test "run: a missing program: the file is failed with a reason naming the program" {
        D=$T/in
        mkdir "$D"
        printf 'payload\n' >"$D/job.txt"
        start_ferry "$T/ferry" run --retries 0 "$D" -- /nonexistent/prog {}
        F=$D/.ferry/failed/job.txt
        wait_for file_exists "$F.ferry-error" 30
        stop_ferry "$T/ferry"

        printf 'payload\n' >"$T/want"
        assert_same_file "$T/want" "$F"
        grep -aq '^reason: .*/nonexistent/prog' "$F.ferry-error" || {
                echo "the sidecar's reason does not name /nonexistent/prog:" >&2
                cat -A "$F.ferry-error" >&2
                return 1
        }
        sidecar_has "$F.ferry-error" "attempts: 1"
        assert_log_has "$T/ferry" "/nonexistent/prog"
        assert_queue_empty "$D"
        assert_no_claims "$D"
}

@test "run: --timeout 0.5s stops the handler and the grandchild it spawned; timed-out: yes" {
        D=$T/in
        mkdir "$D"
        printf 'payload\n' >"$D/job.txt"
        # The handler starts a grandchild that would outlive it by a minute, and waits for it.
        make_handler "$T/h.sh" 'sleep 60 &' 'echo $! >"$1"' 'wait'
        start=$(now_us)
        start_ferry "$T/ferry" run --retries 0 --timeout 0.5s "$D" -- "$T/h.sh" "$T/grandchild" {}
        F=$D/.ferry/failed/job.txt
        wait_for file_exists "$F.ferry-error" 30
        took=$(elapsed_ms "$start")
        grandchild=$(cat "$T/grandchild")
        wait_for proc_gone "$grandchild" 10
        stop_ferry "$T/ferry"

        ((took >= 500)) || {
                echo "failed after ${took} ms, before the 0.5 s timeout" >&2
                return 1
        }
        ((took < 5000 * SLOW)) || {
                echo "failed only after ${took} ms: the timeout did not stop the handler at 0.5 s" >&2
                return 1
        }
        sidecar_has "$F.ferry-error" "timed-out: yes"
        sidecar_has "$F.ferry-error" "attempts: 1"
        grep -aq '^reason: timed out' "$F.ferry-error"
        assert_queue_empty "$D"
        assert_no_claims "$D"
}

@test "run: a handler ignoring SIGTERM past --timeout is killed after --kill-after (SIGKILL)" {
        D=$T/in
        mkdir "$D"
        printf 'payload\n' >"$D/job.txt"
        # Records the SIGTERM, then goes on (its sleeps are in the group and die, the loop not).
        make_handler "$T/h.sh" \
                'echo $$ >"$1"' \
                'trap "echo got TERM >&2; echo TERM >\"\$1.term\"" TERM' \
                'while :; do sleep 0.05; done'
        start=$(now_us)
        start_ferry "$T/ferry" run --retries 0 --timeout 0.5s --kill-after 0.5s "$D" -- "$T/h.sh" "$T/handler" {}
        F=$D/.ferry/failed/job.txt
        wait_for file_exists "$F.ferry-error" 30
        took=$(elapsed_ms "$start")
        handler=$(cat "$T/handler")
        wait_for proc_gone "$handler" 10
        stop_ferry "$T/ferry"

        [[ -f $T/handler.term ]] || {
                echo "the handler never got SIGTERM before SIGKILL" >&2
                return 1
        }
        ((took >= 1000)) || {
                echo "failed after ${took} ms, before timeout + kill-after (1 s)" >&2
                return 1
        }
        sidecar_has "$F.ferry-error" "timed-out: yes"
        sidecar_has "$F.ferry-error" "signal: 9"
        stderr_section "$F.ferry-error" | grep -qx 'got TERM'
}

@test "run: a timed-out handler's orphaned grandchild is reaped by ferry (no zombie left)" {
        D=$T/in
        mkdir "$D"
        printf 'payload\n' >"$D/job.txt"
        make_handler "$T/h.sh" 'sleep 60 &' 'echo $! >"$1"' 'wait'
        start_ferry "$T/ferry" run --retries 0 --timeout 0.5s "$D" -- "$T/h.sh" "$T/grandchild" {}
        wait_for file_exists "$D/.ferry/failed/job.txt.ferry-error" 30
        grandchild=$(cat "$T/grandchild")
        # ferry makes itself the subreaper of its handlers' orphans: it must also reap them,
        # while it keeps running.
        if ! wait_for proc_reaped "$grandchild" 3; then
                echo "grandchild $grandchild is still in /proc while ferry runs:" >&2
                ps -o pid,ppid,stat,cmd -p "$grandchild" >&2 || true
                return 1
        fi
        stop_ferry "$T/ferry"
}

@test "run: a failing handler that removed the file itself: said so, the note written, nothing left claimed" {
        mkdir "$T/in"
        make_handler "$T/h.sh" 'rm -f -- "$1"' 'echo "gave up" >&2' 'exit 1'
        start_ferry "$T/run" run --retries 0 "$T/in" -- "$T/h.sh" {}
        wait_run_started "$T/run"
        printf 'data\n' >"$T/in/job.txt"
        wait_for file_exists "$T/in/.ferry/failed/job.txt.ferry-error" 30
        stop_ferry "$T/run"
        grep -q "job.txt: failed (exit status 1) after 1 attempt; the handler removed or moved the file itself" \
                "$T/run.err" || { cat "$T/run.err" >&2; false; }
        refute grep -q "cannot move it" "$T/run.err"
        grep -q '^gave up$' "$T/in/.ferry/failed/job.txt.ferry-error"
        assert_no_claims "$T/in"
}

@test "run: the failed folder's file system full: the failure note is kept and written once space returns" {
        small_tmpfs
        # The handler fills the file system, then fails: the file can still be moved (a
        # rename), its note cannot be written: two pages with its 4 KiB of stderr, more than
        # the claim's own notes give back.
        make_handler "$T/h.sh" 'dd if=/dev/zero of="'"$T"'/fs/filler" bs=4k 2>/dev/null' \
                'head -c 4000 /dev/zero | tr "\0" x >&2; echo >&2; echo "out of luck" >&2; exit 4'
        start_ferry "$T/run" run --retries 0 "$D" -- "$T/h.sh"
        wait_run_started "$T/run"
        printf 'payload\n' >"$D/job.txt"
        wait_for file_exists "$D/.ferry/failed/job.txt" 10
        wait_for has_text "$T/run.err" "it is kept and written once it can be" 10
        [[ ! -e $D/.ferry/failed/job.txt.ferry-error ]]
        rm -f "$T/fs/filler"
        wait_for file_exists "$D/.ferry/failed/job.txt.ferry-error" 10
        sidecar_has "$D/.ferry/failed/job.txt.ferry-error" "exit-status: 4"
        sidecar_has "$D/.ferry/failed/job.txt.ferry-error" "out of luck"
        assert_log_has "$T/run" "failure note written at last: $D/.ferry/failed/job.txt.ferry-error"
        # Full again at the stop: the reason, at least, reaches the log.
        printf 'payload\n' >"$D/second.txt"
        wait_for has_text "$T/run.err" "second.txt: cannot write the failure note" 10
        stop_ferry "$T/run"
        assert_log_has "$T/run" "the failure note for $D/.ferry/failed/second.txt could not be written (No space left on device); its reason: exit status 4"
        [[ -z $(find "$D/.ferry/failed" -name '.ferry-tmp*') ]]
}

@test "run: the file system full when a file is to be claimed: it stays, is tried every second, and handled once space returns" {
        small_tmpfs
        mkdir -p "$T/fs/stage/sub"
        printf 'payload\n' >"$T/fs/stage/sub/second"
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"'"$T"'/handled"'
        start_ferry "$T/run" run -r --retries 0 "$D" -- "$T/h.sh"
        wait_run_started "$T/run"
        # Full, then a folder moved in (a rename needs no space): its file's claim needs a
        # note of its folder (.origin), which does not fit.
        dd if=/dev/zero of="$T/fs/filler" bs=4k 2>/dev/null || true
        mv "$T/fs/stage/sub" "$D/sub"
        wait_for has_text "$T/run.err" "cannot claim $D/sub/second: No space left on device; it stays there, tried again every second" 20
        sleep 1.5 # tried again meanwhile: said once
        [[ -e $D/sub/second ]]
        [[ $(grep -c "cannot claim $D/sub/second" "$T/run.err") -eq 1 ]]
        rm -f "$T/fs/filler"
        wait_for file_exists "$D/.ferry/done/sub/second" 10
        stop_ferry "$T/run"
        printf '%s\0' second >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        assert_no_claims "$D"
}
