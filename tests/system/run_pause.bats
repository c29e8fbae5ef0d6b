#!/usr/bin/env bats
# run_pause.bats: ferry pause puts a flag in the folder's .ferry that every worker of the rule
# obeys within a second: no handler starts, the running ones finish; ferry status, the
# metrics and the log say so; ferry resume lets them go on, and every file is handled once.

load helpers

# two workers of rule r on $T/in, handler: records its file's name in $T/handled; a file
# named slow* makes it wait until $T/go exists.
start_workers() {
        mkdir -p "$T/in"
        cat >"$T/h.sh" <<EOF
#!/bin/sh
case "\$FERRY_NAME" in slow*) while [ ! -e "$T/go" ]; do sleep 0.05; done ;; esac
printf '%s\n' "\$FERRY_NAME" >>"$T/handled"
EOF
        chmod +x "$T/h.sh"
        start_ferry "$T/a" run --name r -j 2 --metrics-file "$T/a.prom" "$T/in" -- "$T/h.sh" {}
        A=$FERRY_PID
        start_ferry "$T/b" run --name r -j 2 "$T/in" -- "$T/h.sh" {}
        B=$FERRY_PID
        wait_run_started "$T/a"
        wait_run_started "$T/b"
}

either_started() { has_text "$T/a.err" "started" || has_text "$T/b.err" "started"; }

stop_workers() {
        FERRY_PID=$A
        stop_ferry "$T/a"
        FERRY_PID=$B
        stop_ferry "$T/b"
}

@test "pause: two workers start no handler while paused, the running one finishes; resume: each file once" {
        start_workers
        printf 'x\n' >"$T/in/slow"
        # the slow file's handler runs (claimed by one of them) when the rule is paused
        wait_for either_started 30

        run --separate-stderr "$FERRY" pause --dir "$T/in" --name r
        assert_status 0
        [[ $output == "rule r: $T/in: paused"* ]]
        wait_for has_text "$T/a.err" "paused ($T/in/.ferry/r.paused is there)" 10
        wait_for has_text "$T/b.err" "paused ($T/in/.ferry/r.paused is there)" 10

        for i in $(seq 1 20); do printf '%s\n' "$i" >"$T/in/f$i"; done
        touch "$T/go" # the running handler finishes while paused
        wait_for file_exists "$T/in/.ferry/done/slow" 30
        # Both workers have seen the 20 files (they are queued) and started none.
        wait_for has_text "$T/a.prom" "ferry_queue_depth 20" 30
        sleep 2
        [[ $(cat "$T/handled") == slow ]]
        [[ $(find "$T/in" -maxdepth 1 -name 'f*' | wc -l) == 20 ]]
        grep -qx 'ferry_rule_paused{rule="r"} 1' "$T/a.prom"
        grep -qx 'ferry_rules_paused 1' "$T/a.prom"

        run --separate-stderr "$FERRY" status --dir "$T/in" --name r
        assert_status 0
        [[ $output == *"paused since "*": no handler starts until ferry resume"* ]]
        [[ $output == *"queued 20, in flight 0"* ]]

        run --separate-stderr "$FERRY" resume --dir "$T/in" --name r
        assert_status 0
        [[ $output == "rule r: $T/in: resumed" ]]
        wait_files "$T/in/.ferry/done" 21 30
        wait_for has_text "$T/a.err" "resumed" 10
        wait_for has_text "$T/a.prom" 'ferry_rule_paused{rule="r"} 0' 30
        stop_workers
        [[ $(wc -l <"$T/handled") == 21 ]]
        [[ -z $(sort "$T/handled" | uniq -d) ]]
        [[ ! -e $T/in/.ferry/r.paused ]]
}

@test "pause -c FILE RULE: only that rule; an unknown rule is an error; status --json says paused" {
        mkdir "$T/one" "$T/two"
        cat >"$T/ferry.conf" <<EOF
[rule one]
dir = $T/one
command = /bin/true {}

[rule two]
dir = $T/two
command = /bin/true {}
EOF
        run --separate-stderr "$FERRY" pause -c "$T/ferry.conf" two
        assert_status 0
        [[ -e $T/two/.ferry/two.paused && ! -e $T/one/.ferry/one.paused ]]

        run --separate-stderr "$FERRY" status -c "$T/ferry.conf" --json
        assert_status 0
        python3 -c '
import json, sys
rules = {o["rule"]: o for o in map(json.loads, sys.argv[1].splitlines())}
assert rules["two"]["paused"] is True and rules["one"]["paused"] is False, rules
' "$output"

        run --separate-stderr "$FERRY" pause -c "$T/ferry.conf" three
        assert_status 1
        [[ $stderr == *"no rule named three"* ]]

        run --separate-stderr "$FERRY" resume -c "$T/ferry.conf"
        assert_status 0
        [[ ! -e $T/two/.ferry/two.paused ]]

        run --separate-stderr "$FERRY" pause --dir "$T/one" extra
        assert_status 2
}
