#!/usr/bin/env bats
# status_explain.bats: ferry status shows a file in flight with its handler's pid and a failed
# file with its reason; ferry explain says why a file was or was not handled.

load helpers

@test "status: a file in flight with its pid, a failed one with its reason, counts, backend; --json" {
        mkdir "$T/in"
        make_handler "$T/h.sh" 'case "$1" in *bad.csv) echo "row 7 is broken" >&2; exit 4;; *slow.csv) echo $$ >"'"$T"'/slow.pid"; sleep 30;; esac'
        printf 'x\n' >"$T/in/ok.csv"
        printf 'x\n' >"$T/in/bad.csv"
        printf 'x\n' >"$T/in/slow.csv"
        start_ferry "$T/run" run --retries 0 -j 3 --grace 0.5s "$T/in" -- "$T/h.sh" {}
        wait_for file_exists "$T/slow.pid" 30
        wait_for file_exists "$T/in/.ferry/failed/bad.csv.ferry-error" 30
        wait_for file_exists "$T/in/.ferry/done/ok.csv" 30
        pid=$(cat "$T/slow.pid")

        run --separate-stderr "$FERRY" status --dir "$T/in"
        assert_status 0
        echo "$output" >&3
        [[ $output == *"in flight $T/in/slow.csv  pid $pid, running for"* ]]
        [[ $output == *"failed $T/in/.ferry/failed/bad.csv: exit status 4"* ]]
        [[ $output == *"queued 0, in flight 1, retries pending 0, orphaned 0, done 1, failed 1"* ]]
        [[ $output == *"watched with inotify (local file system)"* ]]

        run --separate-stderr "$FERRY" status --dir "$T/in" --json
        assert_status 0
        python3 -c '
import json, sys
o = json.loads(sys.argv[1])
assert o["in_flight"] == 1 and o["done"] == 1 and o["failed"] == 1, o
assert o["claims"][0]["pid"] == int(sys.argv[2]) and o["claims"][0]["path"].endswith("/slow.csv"), o
assert o["failures"][0]["reason"] == "exit status 4", o
' "$output" "$pid"
        stop_ferry "$T/run"

        # Stopped: the slow file went back to the queue, and status says so.
        run --separate-stderr "$FERRY" status --dir "$T/in"
        [[ $output == *"queued 1, in flight 0"* ]]
}

@test "status: the handler and the hooks of a config's rule, as their words; none for --dir; --json" {
        mkdir "$T/in"
        printf '[rule r]\ndir = %s\ncommand = /bin/echo {} "two words" %s\non-failure = /usr/local/bin/alert {name} {note}\n' \
                "$T/in" "''" >"$T/ferry.conf"
        run --separate-stderr "$FERRY" status -c "$T/ferry.conf"
        assert_status 0
        [[ $output == *"  handler: /bin/echo {} 'two words' ''"* ]] || { echo "$output" >&2; return 1; }
        [[ $output == *"  on-failure: /usr/local/bin/alert {name} {note}"* ]]
        [[ $output != *"on-done"* ]]
        run --separate-stderr "$FERRY" status -c "$T/ferry.conf" --json
        assert_status 0
        python3 -c '
import json, sys
o = json.loads(sys.argv[1])
assert o["handler"] == ["/bin/echo", "{}", "two words", ""], o
assert o["on_done"] is None and o["on_failure"] == ["/usr/local/bin/alert", "{name}", "{note}"], o
' "$output"
        run --separate-stderr "$FERRY" status --dir "$T/in"
        assert_status 0
        [[ $output != *"handler:"* ]]

        # A word that is not UTF-8: U+FFFD in "handler", its exact bytes in "handler_base64".
        printf '[rule r]\ndir = %s\ncommand = /bin/echo caf\351.txt {}\n' "$T/in" >"$T/bytes.conf"
        run --separate-stderr "$FERRY" status -c "$T/bytes.conf" --json
        assert_status 0
        python3 -c '
import base64, json, sys
o = json.loads(sys.argv[1])
assert o["handler"] == ["/bin/echo", "caf\ufffd.txt", "{}"], o
assert [base64.b64decode(w) for w in o["handler_base64"]] == [b"/bin/echo", b"caf\xe9.txt", b"{}"], o
assert "on_failure_base64" not in o and o["on_failure"] is None, o
' "$output"
}

@test "explain: excluded by a glob, a temporary name, a writer still open, a failed file, a claimed one" {
        mkdir "$T/in"
        printf 'x' >"$T/in/notes.txt"
        printf 'x' >"$T/in/upload.csv.part"
        run --separate-stderr "$FERRY" explain --dir "$T/in" --match '*.csv' "$T/in/notes.txt"
        [[ $output == *"matches none of the rule's match globs"* ]] || { echo "$output" >&2; return 1; }
        run --separate-stderr "$FERRY" explain --dir "$T/in" --match '*.csv' "$T/in/upload.csv.part"
        [[ $output == *"a temporary or hidden name"* ]] || { echo "$output" >&2; return 1; }

        # A writer that keeps the file open.
        bg bash -c 'exec 3>"$1"; printf partial >&3; sleep 30' writer "$T/in/growing.csv"
        wait_for file_exists "$T/in/growing.csv" 10
        run --separate-stderr "$FERRY" explain --dir "$T/in" --ready close "$T/in/growing.csv"
        [[ $output == *"a process still has it open for writing"* ]] || { echo "$output" >&2; return 1; }
        run --separate-stderr "$FERRY" explain --dir "$T/in" "$T/outside.csv"
        [[ $output == *"it is not in $T/in"* ]] || { echo "$output" >&2; return 1; }

        # A failed file: its reason, from its note.
        make_handler "$T/fail.sh" 'echo "cannot parse" >&2; exit 3'
        printf 'x' >"$T/in/broken.csv"
        start_ferry "$T/run" run --retries 0 --match broken.csv "$T/in" -- "$T/fail.sh" {}
        wait_for file_exists "$T/in/.ferry/failed/broken.csv.ferry-error" 30
        stop_ferry "$T/run"
        run --separate-stderr "$FERRY" explain --dir "$T/in" "$T/in/broken.csv"
        [[ $output == *"failed for good"* && $output == *"reason: exit status 3"* ]] || { echo "$output" >&2; return 1; }
}

@test "explain: judges readiness as run does: settle's time, auto on a polled folder, a marker" {
        mkdir "$T/in"
        printf 'x' >"$T/in/fresh.csv"
        run --separate-stderr "$FERRY" explain --dir "$T/in" --ready settle=1h "$T/in/fresh.csv"
        [[ $output == *"settling: unchanged for"*"of the 1h00m it needs (policy settle)"* ]] || { echo "$output" >&2; return 1; }
        # Polled, auto waits two poll intervals unchanged (run does): not "takes it at once".
        run --separate-stderr "$FERRY" explain --dir "$T/in" --backend poll --poll-interval 1h "$T/in/fresh.csv"
        [[ $output == *"settling: unchanged for"*"of the 2h00m it needs (policy auto, on a polled folder)"* ]] ||
                { echo "$output" >&2; return 1; }
        run --separate-stderr "$FERRY" explain --dir "$T/in" "$T/in/fresh.csv"
        [[ $output == *"complete (no writer holds it open)"* ]] || { echo "$output" >&2; return 1; }
        run --separate-stderr "$FERRY" explain --dir "$T/in" --ready done-file "$T/in/fresh.csv"
        [[ $output == *"waiting for its marker $T/in/fresh.csv.done"* ]] || { echo "$output" >&2; return 1; }
        printf 'ferry-marker 1\nsize 2\n' >"$T/in/fresh.csv.done"
        run --separate-stderr "$FERRY" explain --dir "$T/in" --ready done-file "$T/in/fresh.csv"
        [[ $output == *"does not match its marker"* ]] || { echo "$output" >&2; return 1; }
        : >"$T/in/fresh.csv.done"
        run --separate-stderr "$FERRY" explain --dir "$T/in" --ready done-file "$T/in/fresh.csv"
        [[ $output == *"which is empty and so checks nothing, has stayed empty for 3s"* ]] ||
                { echo "$output" >&2; return 1; }
}

@test "status: a folder that cannot be read is said on stderr and makes the exit status 1" {
        run --separate-stderr "$FERRY" status --dir "$T/nonexistent"
        assert_status 1
        [[ $stderr == *"cannot read $T/nonexistent"* ]]
        mkdir "$T/in"
        run --separate-stderr "$FERRY" status --dir "$T/in"
        assert_status 0
}

@test "explain agrees with run on every name: globs, exclude, require-file, temporary names, hidden folders, links" {
        mkdir "$T/in" "$T/stage"
        local -a opts=(--match '*.csv' --match 'keep/*' --exclude 'ex*' --require-file mark.csv -r)
        touch "$T/in/mark.csv"
        mkdir "$T/in/keep" "$T/in/.hidden"
        printf 'x' >"$T/stage/linked.csv"
        printf '%s\n' a.csv ex.csv notes.txt keep/notes.txt .dot.csv part.csv.part .hidden/in-hidden.csv >"$T/names"
        while read -r name; do printf 'x' >"$T/in/$name"; done <"$T/names"
        ln "$T/stage/linked.csv" "$T/in/linked.csv"
        echo linked.csv >>"$T/names"
        echo mark.csv >>"$T/names"
        # What explain says before the run, name by name.
        : >"$T/said"
        while read -r name; do
                out=$("$FERRY" explain --dir "$T/in" "${opts[@]}" "$T/in/$name")
                if [[ $out == *"takes this name"* ]]; then echo "$name" >>"$T/said"; fi
        done <"$T/names"
        make_handler "$T/h.sh" 'printf "%s\n" "${FERRY_ORIGINAL_PATH#"$2"/}" >>"$1"'
        start_ferry "$T/run" run "${opts[@]}" "$T/in" -- "$T/h.sh" "$T/handled" "$T/in"
        wait_lines "$T/handled" 3 10
        # Nothing more comes: a probe named to be taken, written last, is the last handled.
        printf 'x' >"$T/in/zz-probe.csv"
        wait_for has_line "$T/handled" zz-probe.csv 10
        stop_ferry "$T/run"
        grep -vx zz-probe.csv "$T/handled" | sort >"$T/ran"
        sort "$T/said" >"$T/said.sorted"
        diff "$T/said.sorted" "$T/ran"
        [[ $(cat "$T/ran") == $'a.csv\nkeep/notes.txt\nlinked.csv' ]]
}
