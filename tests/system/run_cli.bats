#!/usr/bin/env bats
# shellcheck disable=SC1083 # {paths} and {name} are ferry placeholders, meant literally
# run_cli.bats: the command line of `ferry run`: --check validates without touching the folder,
# usage errors exit 2 with one "ferry: " line, a folder that does not exist exits 1 naming it.

load helpers

# assert_one_ferry_line: $stderr is exactly one line starting with "ferry: ".
assert_one_ferry_line() {
        if [[ $stderr != "ferry: "* || $stderr == *$'\n'* ]]; then
                echo "stderr is not one 'ferry: ...' line:" >&2
                printf '%s\n' "$stderr" | cat -A >&2
                return 1
        fi
}

# run_ferry ARG...: runs `ferry run ARG...` with a deadline, stdout and stderr apart.
run_ferry() { run --separate-stderr timeout 10 "$FERRY" run "$@"; }

@test "run cli: --help exits 0 with the run usage" {
        run_ferry --help
        assert_status 0
        printf '%s\n' "$output" | grep -qiE '^usage: ferry run'
}

@test "run cli: --check on a good rule exits 0 and leaves the folder alone" {
        mkdir "$T/in"
        printf 'payload\n' >"$T/in/job.txt"
        run_ferry --check -j 2 --retries 1 --timeout 5s --match '*.txt' "$T/in" -- cat {}
        assert_status 0
        [[ -f $T/in/job.txt ]] || { echo "--check handled the file" >&2; return 1; }
        [[ ! -e $T/in/.ferry ]] || { echo "--check created $T/in/.ferry" >&2; return 1; }
}

@test "run cli: an unknown option exits 2 with one line naming it, nothing on stdout" {
        mkdir "$T/in"
        run_ferry --bogus-option "$T/in" -- true {}
        assert_status 2
        [[ -z $output ]]
        assert_one_ferry_line
        [[ $stderr == *bogus-option* ]] || { echo "the message does not name the option: $stderr" >&2; return 1; }
}

@test "run cli: a missing handler exits 2 with one line" {
        mkdir "$T/in"
        for args in "$T/in" "$T/in --"; do
                read -ra argv <<<"$args"
                run_ferry "${argv[@]}"
                [[ $status -eq 2 ]] || { echo "ferry run $args: exit $status, expected 2 ($stderr)" >&2; return 1; }
                assert_one_ferry_line
        done
        run_ferry
        assert_status 2
        assert_one_ferry_line
        [[ ! -e $T/in/.ferry ]]
}

@test "run cli: --ready=bogus exits 2 with one line naming it" {
        mkdir "$T/in"
        run_ferry --ready=bogus "$T/in" -- true {}
        assert_status 2
        assert_one_ferry_line
        [[ $stderr == *bogus* ]]
}

@test "run cli: bad counts, durations and formats exit 2 with one line" {
        mkdir "$T/in"
        for args in "-j 0" "-j abc" "--jobs -1" "--timeout 5x" "--kill-after soon" "--retry-delay -1s" \
                "--retries -1" "--retries x" "--batch 0" "--lease 0x" "--grace forever" "--log-format xml" \
                "--name bad/name"; do
                read -ra argv <<<"$args"
                run_ferry "${argv[@]}" "$T/in" -- true {}
                [[ $status -eq 2 ]] || { echo "ferry run $args: exit $status, expected 2 ($stderr)" >&2; return 1; }
                assert_one_ferry_line
        done
        run_ferry "$T/in" -j
        assert_status 2
        [[ ! -e $T/in/.ferry ]]
}

@test "run cli: options that exclude each other exit 2 (--stdin or --output with --batch, --keep after --done)" {
        mkdir "$T/in"
        run_ferry --done "$T/done" --keep "$T/in" -- true {}
        [[ $status -eq 2 ]] || { echo "--done --keep: exit $status, expected 2 ($stderr)" >&2; return 1; }
        assert_one_ferry_line
        run_ferry --stdin --batch 2 "$T/in" -- cat {paths}
        [[ $status -eq 2 ]] || { echo "--stdin --batch 2: exit $status, expected 2 ($stderr)" >&2; return 1; }
        assert_one_ferry_line
        run_ferry --output "$T" --batch 2 "$T/in" -- cat {paths}
        [[ $status -eq 2 ]] || { echo "--output --batch 2: exit $status, expected 2 ($stderr)" >&2; return 1; }
        assert_one_ferry_line
        [[ ! -e $T/in/.ferry ]]
}

@test "run cli: a nonexistent DIR exits 1 with a message naming it" {
        run_ferry "$T/missing" -- true {}
        assert_status 1
        [[ -z $output ]]
        [[ $stderr == "ferry: "* ]]
        [[ $stderr == *"$T/missing"* ]] || { echo "the message does not name the folder: $stderr" >&2; return 1; }
        [[ ! -e $T/missing ]] || { echo "ferry created $T/missing" >&2; return 1; }
}

@test "run cli: a nonexistent DIR is reported in one line, like other commands' runtime errors" {
        run_ferry "$T/missing" -- true {}
        assert_status 1
        assert_one_ferry_line
}

@test "run cli: a regular file as DIR exits 1 naming it" {
        printf x >"$T/file"
        run_ferry "$T/file" -- true {}
        assert_status 1
        [[ $stderr == *"$T/file"* ]] || { echo "the message does not name the path: $stderr" >&2; return 1; }
}
