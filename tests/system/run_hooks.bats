#!/usr/bin/env bats
# shellcheck disable=SC2016,SC1083 # single-quoted hook lines are meant literally; {note} is a placeholder
# run_hooks.bats: --on-done and --on-failure (on-done, on-failure in ferry.conf): a program run
# for each file once it reached the done or failed folder and its line is logged, with the
# handler's placeholders of the path where the file was found, {dest} and {note}; argv only,
# any bytes. A hook that fails, hangs past its timeout or cannot start is logged once and the
# file's outcome stands; hooks take no handler slot, at most --jobs run at once; at a stop the
# running ones finish, the waiting ones are not run and counted. --check refuses a missing hook.

load helpers

setup() {
        ferry_setup
        IMMUTABLE=()
}

teardown() {
        local f
        for f in "${IMMUTABLE[@]}"; do chattr -i "$f" 2>/dev/null || true; done
        ferry_teardown
}

# make_recorder FILE: a hook called as FILE WORD {} {dest} ...: writes its arguments, then
# FERRY_OUTCOME, GREETING, whether {dest} exists and whether ferry's log ($T/run.err) holds its
# file's outcome line, as NUL records to a file of its own in $T/calls (CALL.rec, whole once
# there); then, when $T/exit.NAME is there (NAME: {}'s), writes "hook says no" to stderr and
# exits with the status it holds.
make_recorder() {
        mkdir -p "$T/calls"
        make_handler "$1" \
                'f=$(mktemp "'"$T"'/calls/call.XXXXXX") || exit 99' \
                'dest=$3; logged=no; [ -n "$dest" ] && [ -e "$dest" ] && where=there || where=nowhere' \
                'grep -qaF -- "$FERRY_OUTCOME [run] $2: " "'"$T"'/run.err" && logged=logged' \
                'printf "%s\0" "$@" "$FERRY_OUTCOME" "${GREETING-}" "$where" "$logged" >"$f" && mv "$f" "$f.rec"' \
                'name=${2##*/}; [ -f "'"$T"'/exit.$name" ] || exit 0' \
                'echo "hook says no" >&2; exit "$(cat "'"$T"'/exit.$name")"'
}

calls() { find "$T/calls" -name '*.rec' 2>/dev/null | wc -l; }
has_calls() { (($(calls) >= $1)); }

# assert_call RECORDS...: one call's record file holds exactly these NUL records.
assert_call() {
        local rec
        printf '%s\0' "$@" >"$T/want"
        for rec in "$T"/calls/*.rec; do
                cmp -s "$T/want" "$rec" && return 0
        done
        echo "no hook call with: $(show_nul "$T/want" | tr '\n' '|')" >&2
        for rec in "$T"/calls/*.rec; do echo "  got: $(show_nul "$rec" | tr '\n' '|')" >&2; done
        return 1
}

# log_count TEXT: lines of ferry's log ($T/run.err) holding TEXT.
log_count() { grep -caF -- "$1" "$T/run.err" || true; }

@test "hooks: on-done runs once per done file, after its log line, with {} {name} {dest} {note}, any bytes" {
        make_recorder "$T/rec.sh"
        mkdir "$T/in"
        nl=$'\n'
        printf 'x\n' >"$T/in/a b${nl}c.txt"
        printf 'y\n' >"$T/in/plain.csv"
        start_ferry "$T/run" run --on-done "'$T/rec.sh' done {} {dest} {name} {note} '{stem} {ext}'" \
                "$T/in" -- true {}
        wait_for has_calls 2 30
        stop_ferry "$T/run"
        [[ $(calls) -eq 2 ]] || { echo "$(calls) hook calls for 2 files" >&2; return 1; }
        assert_call "done" "$T/in/a b${nl}c.txt" "$T/in/.ferry/done/a b${nl}c.txt" "a b${nl}c.txt" "" \
                "a b${nl}c txt" "done" "" there logged
        assert_call "done" "$T/in/plain.csv" "$T/in/.ferry/done/plain.csv" plain.csv "" "plain csv" "done" "" there \
                logged
        [[ $(log_count 'hook') -eq 0 ]] || { grep -a hook "$T/run.err" >&2; return 1; }
}

@test "hooks: on-failure gets {note}; a hook that fails or cannot start is logged once, the outcome stands" {
        make_recorder "$T/rec.sh"
        make_handler "$T/h.sh" 'case "$1" in *bad.csv) echo "row 7 is broken" >&2; exit 3;; esac'
        mkdir "$T/in"
        printf 'x\n' >"$T/in/good.csv"
        printf 'x\n' >"$T/in/bad.csv"
        printf '7' >"$T/exit.bad.csv" # the on-failure hook fails too
        start_ferry "$T/run" run --retries 0 --env GREETING=hi --on-done "$T/no-such-alert {}" \
                --on-failure "'$T/rec.sh' failed {} {dest} {note}" "$T/in" -- "$T/h.sh" {}
        wait_for has_calls 1 30
        wait_for has_text "$T/run.err" 'on-failure hook' 10
        wait_for has_text "$T/run.err" 'on-done hook' 10
        stop_ferry "$T/run"

        assert_call failed "$T/in/bad.csv" "$T/in/.ferry/failed/bad.csv" "exit status 3" failed hi there logged
        [[ $(calls) -eq 1 ]]
        # Each failing hook once, as a warning naming the hook, the file and why.
        [[ $(log_count "warning [run] $T/in/bad.csv: on-failure hook $T/rec.sh failed (exit status 7); its stderr: hook says no") -eq 1 ]] ||
                { cat "$T/run.err" >&2; return 1; }
        [[ $(log_count "warning [run] $T/in/good.csv: on-done hook $T/no-such-alert cannot start: No such file or directory") -eq 1 ]] ||
                { cat "$T/run.err" >&2; return 1; }
        [[ $(log_count 'hook') -eq 2 ]]
        # The files' outcomes are what their handlers made them, once each.
        [[ -f $T/in/.ferry/done/good.csv && -f $T/in/.ferry/failed/bad.csv ]]
        has_line "$T/in/.ferry/failed/bad.csv.ferry-error" 'reason: exit status 3'
        [[ $(log_count "done [run] $T/in/good.csv") -eq 1 && $(log_count "failed [run] $T/in/bad.csv") -eq 1 ]]
        assert_no_claims "$T/in"
        assert_queue_empty "$T/in"
}

@test "hooks: a file whose move to done or failed waits gets its hook once it is moved" {
        require_root "makes folders immutable (chattr +i)"
        command -v chattr >/dev/null || skip "chattr is missing (scripts/install-deps test installs e2fsprogs)"
        make_recorder "$T/rec.sh"
        make_handler "$T/h.sh" 'case "$1" in *bad*) exit 5;; esac'
        mkdir "$T/in"
        start_ferry "$T/run" run --retries 0 --on-done "'$T/rec.sh' done {} {dest} {note}" \
                --on-failure "'$T/rec.sh' failed {} {dest} {note}" "$T/in" -- "$T/h.sh" {}
        wait_run_started "$T/run"
        for f in "done" failed; do
                chattr +i "$T/in/.ferry/$f" || skip "this file system has no immutable flag"
                IMMUTABLE+=("$T/in/.ferry/$f")
        done
        printf 'x' >"$T/in/good"
        printf 'x' >"$T/in/bad"
        wait_for has_text "$T/run.err" "good: handled, but cannot move it" 30
        wait_for has_text "$T/run.err" "bad: failed (exit status 5); cannot move it" 30
        sleep 1.5 # moves tried and refused meanwhile: no hook yet
        [[ $(calls) -eq 0 ]] || { echo "a hook ran before its file was moved" >&2; return 1; }
        chattr -i "$T/in/.ferry/done" "$T/in/.ferry/failed"
        wait_for has_calls 2 30
        stop_ferry "$T/run"
        assert_call "done" "$T/in/good" "$T/in/.ferry/done/good" "" "done" "" there logged
        assert_call failed "$T/in/bad" "$T/in/.ferry/failed/bad" "exit status 5" failed "" there logged
        [[ $(calls) -eq 2 ]]
}

@test "hooks: one that hangs past the rule's timeout is killed and logged; hooks take no handler slot, --jobs of them at once" {
        mkdir "$T/in" "$T/marks"
        # f1's hook hangs (with a child in its group); the others say when they ran.
        make_handler "$T/hook.sh" \
                'case "$1" in' \
                '*/f1) sleep 300 & echo $! >"'"$T"'/marks/sleep.pid"; echo $$ >"'"$T"'/marks/hang.pid"; wait;;' \
                '*) touch "'"$T"'/marks/ran.${1##*/}";;' \
                'esac'
        start_ferry "$T/run" run -j 1 --timeout 3s --kill-after 0.2s --on-done "'$T/hook.sh' {}" "$T/in" -- true {}
        wait_run_started "$T/run"
        printf 'x' >"$T/in/f1"
        wait_for file_exists "$T/marks/hang.pid" 30
        hang=$(cat "$T/marks/hang.pid")
        # The one slot's hook hangs: the next file is handled all the same, its hook waits.
        printf 'x' >"$T/in/f2"
        wait_for file_exists "$T/in/.ferry/done/f2" 30
        proc_alive "$hang" || { echo "f2 was handled only after f1's hook ended" >&2; return 1; }
        [[ ! -e $T/marks/ran.f2 ]] || { echo "a second hook ran beside the first with -j 1" >&2; return 1; }
        # Past the timeout: SIGTERM to its group, the warning, and the waiting hook's turn.
        wait_for file_exists "$T/marks/ran.f2" 30
        wait_for proc_gone "$hang" 5
        wait_for proc_gone "$(cat "$T/marks/sleep.pid")" 5
        wait_for has_text "$T/run.err" "on-done hook $T/hook.sh failed (timed out after 3s)" 10
        stop_ferry "$T/run"
        [[ $(log_count "warning [run] $T/in/f1: on-done hook $T/hook.sh failed (timed out after 3s)") -eq 1 ]]
        [[ $(log_count 'hook') -eq 1 ]]
        [[ -f $T/in/.ferry/done/f1 && -f $T/in/.ferry/done/f2 ]]
        [[ $(count_files "$T/in/.ferry/failed") -eq 0 ]]
}

@test "hooks: at a stop the running hook finishes, the waiting ones are not run and ferry says how many" {
        mkdir "$T/in" "$T/marks"
        make_handler "$T/hook.sh" \
                'touch "'"$T"'/marks/started.${1##*/}"' \
                'while [ ! -e "'"$T"'/marks/go" ]; do sleep 0.05; done' \
                'touch "'"$T"'/marks/finished.${1##*/}"'
        start_ferry "$T/run" run -j 1 --grace 0 --on-done "'$T/hook.sh' {}" "$T/in" -- true {}
        wait_run_started "$T/run"
        printf 'x' >"$T/in/f1"
        wait_for file_exists "$T/marks/started.f1" 30
        printf 'x' >"$T/in/f2"
        printf 'x' >"$T/in/f3"
        wait_for file_exists "$T/in/.ferry/done/f2" 30
        wait_for file_exists "$T/in/.ferry/done/f3" 30
        kill -TERM "$FERRY_PID"
        wait_for has_text "$T/run.err" 'stopping: no new claims' 10
        # Stopping, ferry waits for the running hook (not killed at the end of the grace time).
        if wait_for proc_gone "$FERRY_PID" 1 2>/dev/null; then
                echo "ferry stopped before its running hook ended" >&2
                return 1
        fi
        touch "$T/marks/go"
        stop_ferry "$T/run"
        [[ -e $T/marks/finished.f1 ]]
        [[ ! -e $T/marks/started.f2 && ! -e $T/marks/started.f3 ]]
        [[ $(log_count 'warning: 2 hooks not run: ferry stopped before their turn') -eq 1 ]] ||
                { cat "$T/run.err" >&2; return 1; }
}

@test "hooks: in ferry.conf, on-done and on-failure are split as command is, and run as --user" {
        require_root "switches users"
        id nobody >/dev/null 2>&1 || skip "no user nobody on this machine"
        chmod 1777 "$T"
        mkdir "$T/calls" "$T/in"
        chmod 1777 "$T/calls"
        chmod 777 "$T/in"
        make_handler "$T/h.sh" 'case "$1" in *bad*) exit 5;; esac'
        make_handler "$T/rec.sh" \
                'f=$(mktemp "'"$T"'/calls/call.XXXXXX") || exit 99' \
                'printf "%s\0" "$@" "$(id -u)" "$FERRY_OUTCOME" "$GREETING" >"$f" && mv "$f" "$f.rec"'
        chmod 755 "$T/h.sh" "$T/rec.sh"
        cat >"$T/ferry.conf" <<EOF
[rule hooked]
dir = $T/in
retries = 0
user = nobody
env = GREETING=hello
command = $T/h.sh {}
on-done = $T/rec.sh "two words" {name} {dest} 'a\\b' {note}
on-failure = $T/rec.sh {name} {dest} "why: {note}"
EOF
        printf 'x' >"$T/in/ok.txt"
        printf 'x' >"$T/in/bad.txt"
        start_ferry "$T/run" run -c "$T/ferry.conf"
        wait_for has_calls 2 30
        stop_ferry "$T/run"
        uid=$(id -u nobody)
        assert_call "two words" ok.txt "$T/in/.ferry/done/ok.txt" 'a\b' "" "$uid" "done" hello
        assert_call bad.txt "$T/in/.ferry/failed/bad.txt" "why: exit status 5" "$uid" failed hello
        [[ $(calls) -eq 2 ]]
}

@test "hooks: --check refuses a missing or unrunnable hook, a hook with {paths}, a handler with {note}; -c too" {
        mkdir "$T/in"
        printf 'echo hi\n' >"$T/notexec"
        run --separate-stderr "$FERRY" run --check --on-done "$T/missing-alert {}" "$T/in" -- true {}
        assert_status 2
        [[ $stderr == "ferry: rule run: the on-done hook $T/missing-alert does not exist" ]] || { echo "$stderr" >&2; false; }
        run --separate-stderr "$FERRY" run --check --on-failure "$T/notexec {note}" "$T/in" -- true {}
        assert_status 2
        [[ $stderr == *"the on-failure hook $T/notexec is not executable"* ]] || { echo "$stderr" >&2; false; }
        run --separate-stderr "$FERRY" run --check --on-failure "no-such-alert-$$ {note}" "$T/in" -- true {}
        assert_status 2
        [[ $stderr == *"the on-failure hook no-such-alert-$$ is not found in PATH"* ]] || { echo "$stderr" >&2; false; }
        run --separate-stderr "$FERRY" run --check --on-done "true {paths}" "$T/in" -- true {}
        assert_status 2
        [[ $stderr == *"a hook (on-done) runs for one file"* ]] || { echo "$stderr" >&2; false; }
        run --separate-stderr "$FERRY" run --check "$T/in" -- echo {note}
        assert_status 2
        [[ $stderr == *"{dest} and {note} for hooks"* ]] || { echo "$stderr" >&2; false; }
        run --separate-stderr "$FERRY" run --check --on-done "true 'open" "$T/in" -- true {}
        assert_status 2
        [[ $stderr == "ferry: on-done: a quote is not closed" ]] || { echo "$stderr" >&2; false; }
        run --separate-stderr "$FERRY" run --check --on-done "true {} {dest}" --on-failure "true {note}" \
                "$T/in" -- true {}
        assert_status 0

        printf '[rule a]\ndir = %s\ncommand = true {}\non-failure = %s/missing-alert {note}\n' "$T/in" "$T" \
                >"$T/ferry.conf"
        run --separate-stderr "$FERRY" run --check -c "$T/ferry.conf"
        assert_status 2
        [[ $stderr == "ferry: rule a: the on-failure hook $T/missing-alert does not exist" ]] || { echo "$stderr" >&2; false; }
        [[ ! -e $T/in/.ferry ]]
}
