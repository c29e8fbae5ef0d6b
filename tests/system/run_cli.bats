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

@test "run cli: a bad value or a missing folder with a newline or an escape in it is still one line, shown escaped" {
        mkdir "$T/in"
        run_ferry --max-queue $'12\nrm -rf' "$T/in" -- true {}
        assert_status 2
        assert_one_ferry_line
        [[ $stderr == *"'12\nrm -rf'"* ]] || { echo "not shown escaped: $stderr" >&2; return 1; }
        run_ferry --timeout $'5s\e[2J' "$T/in" -- true {}
        assert_status 2
        assert_one_ferry_line
        [[ $stderr == *'5s\x1b[2J'* ]] || { echo "not shown escaped: $stderr" >&2; return 1; }
        run_ferry "$T/in"$'\nmissing' -- true {}
        assert_status 1
        assert_one_ferry_line
        [[ $stderr == *"$T/in\\nmissing"* ]] || { echo "the folder is not named, escaped: $stderr" >&2; return 1; }
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

@test "run cli: --check judges a done or failed folder not made yet by its nearest existing folder" {
        # A failed folder two levels inside a recursive rule's folder, neither level made
        # yet: its files would come back as new work (one file was handled 1,289 times).
        mkdir "$T/in"
        run_ferry --check -r --failed "$T/in/x/y" "$T/in" -- /bin/false
        assert_status 2
        assert_one_ferry_line
        [[ $stderr == *"$T/in/x/y is watched by the rule itself"* ]]
        [[ ! -e $T/in/x ]]
        # The same inside a hidden folder is fine: hidden folders are never watched.
        run_ferry --check -r --failed "$T/in/.x/y" "$T/in" -- /bin/false
        assert_status 0
        # A done folder to be made on another file system: files could never be moved there.
        local other=/dev/shm
        [[ -d $other && $(stat -c %d "$other") != $(stat -c %d "$T") ]] || skip "no second file system"
        run_ferry --check --done "$other/ferry-test-$$/not/made" "$T/in" -- /bin/true
        assert_status 2
        assert_one_ferry_line
        [[ $stderr == *"is on another file system"* ]]
        [[ ! -e $other/ferry-test-$$ ]]
}

@test "run cli: --done with --keep or --delete is an error in either order, as ferry-run(1) says" {
        mkdir "$T/in"
        local order
        for order in "--keep --done $T/d" "--done $T/d --keep" "--delete --done $T/d" "--done $T/d --delete"; do
                # shellcheck disable=SC2086 # the options are meant to split
                run_ferry --check $order "$T/in" -- /bin/true
                assert_status 2
                assert_one_ferry_line
        done
        run_ferry --check --delete --keep "$T/in" -- /bin/true
        assert_status 0
}

@test "run cli: the synopsis DIR -- PROGRAM is enforced: no handler without --, one DIR before it" {
        mkdir "$T/in" "$T/other"
        # Without --, /bin/echo was taken for the handler; with two words before it, the second.
        for args in "$T/in /bin/echo ARG" "--check $T/in $T/other -- /bin/true" "$T/in $T/other -- /bin/true"; do
                read -ra argv <<<"$args"
                run_ferry "${argv[@]}"
                [[ $status -eq 2 ]] || { echo "ferry run $args: exit $status, expected 2 ($stderr)" >&2; return 1; }
                assert_one_ferry_line
                [[ $stderr == *"DIR -- PROGRAM"* ]]
        done
        [[ ! -e $T/in/.ferry ]]
        # Options anywhere before --, their arguments whatever they look like, are fine.
        for args in "--check $T/in -- /bin/true" "--check -rj2 $T/in -- /bin/true -x" \
                "--check $T/in --jobs 3 -- /bin/true" "--check --match=-- $T/in -- /bin/true" \
                "--check -m -- $T/in -- /bin/true"; do
                read -ra argv <<<"$args"
                run_ferry "${argv[@]}"
                [[ $status -eq 0 ]] || { echo "ferry run $args: exit $status, expected 0 ($stderr)" >&2; return 1; }
        done
}

@test "run cli: --check says a handler that cannot run, a folder that cannot hold .ferry, and a .ferry ferry would refuse" {
        mkdir "$T/in"
        printf 'echo hi\n' >"$T/notexec"
        local args
        for args in "/nonexistent/handler:does not exist" "no-such-program-$$:is not found in PATH" \
                "$T/notexec:is not executable" "$T:is not a regular file"; do
                run_ferry --check "$T/in" -- "${args%%:*}"
                assert_status 2
                assert_one_ferry_line
                [[ $stderr == *"${args#*:}"* ]] || { echo "$stderr" >&2; false; }
        done
        run_ferry --check /proc -- /bin/true
        assert_status 2
        [[ $stderr == *"/proc is on a kernel file system"* ]] || { echo "$stderr" >&2; false; }
        mkdir "$T/in/.ferry"
        chmod 0777 "$T/in/.ferry"
        run_ferry --check "$T/in" -- /bin/true
        assert_status 2
        [[ $stderr == *"$T/in/.ferry is writable by everyone"* ]] || { echo "$stderr" >&2; false; }
        # A placeholder for the program is the user's business; a program in PATH is found.
        chmod 0711 "$T/in/.ferry"
        run_ferry --check "$T/in" -- {} arg
        assert_status 0
        run_ferry --check "$T/in" -- true {}
        assert_status 0
}
