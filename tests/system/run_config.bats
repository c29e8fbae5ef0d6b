#!/usr/bin/env bats
# run_config.bats: `ferry run -c FILE`: rules from ferry.conf(5), --check, errors that name
# FILE:LINE, and SIGHUP: a good file replaces the rules, a bad one is rejected and the rules in
# force keep running.

load helpers

# write_config FILE UPPER_COMMAND: two rules, csv files uppercased into out/, txt files recorded.
write_config() {
        cat >"$1" <<CONF
# two rules, two folders
[ferry]
grace = 5s

[rule upper]
dir = $T/in
match = *.csv
stdin = yes
output = $T/out
command = $2

[rule record]
dir = $T/logs
command = $T/record.sh {name}
CONF
}

@test "config: --check accepts a good file and names FILE:LINE for a bad one" {
        mkdir "$T/in" "$T/out" "$T/logs"
        make_handler "$T/record.sh" 'printf "%s\n" "$1" >>"'"$T"'/recorded"'
        write_config "$T/ferry.conf" 'tr a-z A-Z'
        run --separate-stderr "$FERRY" run -c "$T/ferry.conf" --check
        assert_status 0

        printf '[rule x]\ndir = %s\ncommand = echo "open\n' "$T/in" >"$T/quote.conf"
        run --separate-stderr "$FERRY" run -c "$T/quote.conf" --check
        assert_status 2
        [[ $stderr == "ferry: $T/quote.conf:3: command: a quote is not closed" ]] || { echo "got: $stderr" >&2; return 1; }

        printf '[rule x]\ndir = %s\njobs = many\ncommand = true\n' "$T/in" >"$T/jobs.conf"
        run --separate-stderr "$FERRY" run -c "$T/jobs.conf" --check
        assert_status 2
        [[ $stderr == "ferry: $T/jobs.conf:3: jobs: 'many' is not a whole number from 1 to 4096" ]] || { echo "got: $stderr" >&2; return 1; }

        printf '[rule x]\ndir = %s/missing\ncommand = true\n' "$T" >"$T/dir.conf"
        run --separate-stderr "$FERRY" run -c "$T/dir.conf" --check
        assert_status 2
        [[ $stderr == *"$T/dir.conf:1:"*"$T/missing"* ]] || { echo "got: $stderr" >&2; return 1; }

        printf 'jobs = 2\n' >"$T/nosection.conf"
        run --separate-stderr "$FERRY" run -c "$T/nosection.conf" --check
        assert_status 2
        [[ $stderr == *"nosection.conf:1:"* ]] || { echo "got: $stderr" >&2; return 1; }
}

@test "config: two rules run side by side; SIGHUP applies a good file and rejects a bad one" {
        mkdir "$T/in" "$T/out" "$T/logs"
        make_handler "$T/record.sh" 'printf "%s\n" "$1" >>"'"$T"'/recorded"'
        write_config "$T/ferry.conf" 'tr a-z A-Z'
        printf 'abc\n' >"$T/in/first.csv"
        start_ferry "$T/run" run -c "$T/ferry.conf"
        wait_for file_exists "$T/out/first.csv" 30
        [[ $(cat "$T/out/first.csv") == ABC ]]
        printf 'x\n' >"$T/logs/one.log"
        wait_line "$T/recorded" one.log 30

        # A good new file: the next csv is reversed instead.
        write_config "$T/ferry.conf" rev
        kill -HUP "$FERRY_PID"
        wait_for has_text "$T/run.err" "$T/ferry.conf: reloaded" 30
        printf 'abc\n' >"$T/in/second.csv"
        wait_for file_exists "$T/out/second.csv" 30
        [[ $(cat "$T/out/second.csv") == cba ]]

        # A bad one: rejected, and the rules in force (rev) go on.
        printf '[rule broken\n' >"$T/ferry.conf"
        kill -HUP "$FERRY_PID"
        wait_for has_text "$T/run.err" "the new config is rejected" 30
        printf 'abc\n' >"$T/in/third.csv"
        wait_for file_exists "$T/out/third.csv" 30
        [[ $(cat "$T/out/third.csv") == cba ]]
        printf 'x\n' >"$T/logs/two.log"
        wait_line "$T/recorded" two.log 30

        stop_ferry "$T/run"
        # Each file handled once, across both reloads.
        [[ $(sort "$T/recorded" | uniq -d) == "" ]]
        [[ $(ls "$T/in/.ferry/done") == $'first.csv\nsecond.csv\nthird.csv' ]]
        assert_no_claims "$T/in"
        assert_no_claims "$T/logs"
}

@test "config: a NUL byte in a line is an error naming FILE:LINE, never a value cut short" {
        mkdir "$T/in"
        printf '[rule a]\ndir = %s\nmatch = *.t\0xt\ncommand = /bin/true\n' "$T/in" >"$T/nul.conf"
        run --separate-stderr "$FERRY" run --check -c "$T/nul.conf"
        assert_status 2
        [[ $stderr == *"$T/nul.conf:3: a NUL byte"* ]] || { echo "$stderr" >&2; false; }
}
