#!/usr/bin/env bats
# cli.bats: the command line contract: help and version, usage errors (exit 2, one line),
# runtime errors (exit 1, naming the path), and SIGTERM/SIGINT ending a watch with 0.

load helpers

# assert_one_error_line: $stderr is exactly one line starting with "ferry: ".
assert_one_error_line() {
        if [[ $stderr != "ferry: "* || $stderr == *$'\n'* ]]; then
                echo "stderr is not one 'ferry: ...' line:" >&2
                printf '%s\n' "$stderr" | cat -A >&2
                return 1
        fi
}

# assert_usage_line WORDS: $output has a line starting with "usage: ferry WORDS" (any case).
assert_usage_line() {
        if ! printf '%s\n' "$output" | grep -qiE "^usage: ferry $1"; then
                echo "no 'usage: ferry $1' line in:" >&2
                printf '%s\n' "$output" >&2
                return 1
        fi
}

@test "cli: ferry --help exits 0 and prints a usage line naming the commands" {
        run --separate-stderr "$FERRY" --help
        assert_status 0
        assert_usage_line ''
        [[ $output == *watch* && $output == *wait* ]]
}

@test "cli: ferry watch --help and ferry help watch exit 0 with the watch usage" {
        run --separate-stderr "$FERRY" watch --help
        assert_status 0
        assert_usage_line 'watch'
        watch_help=$output
        run --separate-stderr "$FERRY" help watch
        assert_status 0
        [[ $output == "$watch_help" ]] || { echo "'ferry help watch' differs from 'ferry watch --help'" >&2; return 1; }
}

@test "cli: ferry wait --help exits 0 with the wait usage" {
        run --separate-stderr "$FERRY" wait --help
        assert_status 0
        assert_usage_line 'wait'
}

@test "cli: ferry --version exits 0 and prints the version" {
        run --separate-stderr "$FERRY" --version
        assert_status 0
        [[ $output =~ [0-9]+\.[0-9]+\.[0-9]+ ]]
}

@test "cli: an unknown option exits 2 with one line on stderr, nothing on stdout" {
        mkdir "$T/in"
        run --separate-stderr timeout 10 "$FERRY" watch --bogus-option "$T/in"
        assert_status 2
        [[ -z $output ]]
        assert_one_error_line
        [[ $stderr == *bogus-option* ]] || { echo "the message does not name the option: $stderr" >&2; return 1; }

        run --separate-stderr timeout 10 "$FERRY" wait --bogus-option "$T/in/f"
        assert_status 2
        assert_one_error_line
}

@test "cli: an unknown command, or no command, exits 2" {
        run --separate-stderr timeout 10 "$FERRY" frobnicate
        assert_status 2
        assert_one_error_line
        [[ $stderr == *frobnicate* ]]

        run --separate-stderr timeout 10 "$FERRY"
        assert_status 2
        [[ -z $output ]]
}

@test "cli: missing operands exit 2" {
        run --separate-stderr timeout 10 "$FERRY" watch
        assert_status 2
        run --separate-stderr timeout 10 "$FERRY" wait
        assert_status 2
}

@test "cli: a nonexistent DIR exits 1 with one line naming the path" {
        run --separate-stderr timeout 10 "$FERRY" watch "$T/missing"
        assert_status 1
        [[ -z $output ]]
        assert_one_error_line
        [[ $stderr == *"$T/missing"* ]] || { echo "the message does not name the path: $stderr" >&2; return 1; }
        [[ $stderr == *"No such file or directory"* ]] || { echo "the message does not say why: $stderr" >&2; return 1; }
}

@test "cli: watching a regular file as DIR exits 1 naming the path" {
        printf x >"$T/file"
        run --separate-stderr timeout 10 "$FERRY" watch "$T/file"
        assert_status 1
        assert_one_error_line
        [[ $stderr == *"$T/file"* ]]
}

@test "cli: --ready=bogus exits 2 (watch and wait)" {
        mkdir "$T/in"
        run --separate-stderr timeout 10 "$FERRY" watch --ready=bogus "$T/in"
        assert_status 2
        assert_one_error_line
        [[ $stderr == *bogus* ]]
        run --separate-stderr timeout 10 "$FERRY" wait --ready bogus "$T/in/f"
        assert_status 2
        assert_one_error_line
}

@test "cli: bad durations, counts and event names exit 2" {
        mkdir "$T/in"
        for args in "--timeout 5x" "--timeout -1s" "--timeout abc" "--count abc" "--count -3" "--events bogus" "--ready=settle=soon"; do
                read -ra argv <<<"$args"
                run --separate-stderr timeout 10 "$FERRY" watch "${argv[@]}" "$T/in"
                [[ $status -eq 2 ]] || { echo "ferry watch $args: exit $status, expected 2 ($stderr)" >&2; return 1; }
                assert_one_error_line
        done
        run --separate-stderr timeout 10 "$FERRY" wait --timeout 1y "$T/in/f"
        assert_status 2
}

@test "cli: SIGTERM and SIGINT end a watch with exit 0" {
        mkdir "$T/in"
        for sig in TERM INT; do
                # Background jobs of a non-interactive shell start with SIGINT ignored; a
                # terminal's Ctrl-C reaches a ferry with the default disposition, so restore it.
                bg env --default-signal=INT "$FERRY" watch "$T/in" >"$T/out" 2>"$T/out.err"
                pid=$BG_PID
                probe_until_seen "$T/in" "$T/out"
                kill -"$sig" "$pid"
                wait_exit "$pid" 10
                ((EXIT_RC == 0)) || { echo "SIG$sig: exit $EXIT_RC, expected 0" >&2; return 1; }
        done
}

@test "watch --format: an unknown directive or escape, or a lone % or \\ at the end, is a usage error naming it" {
        local fmt
        for fmt in 'abc%' '%q\n' '\q' 'x\' '%p %z'; do
                run --separate-stderr "$FERRY" watch --format "$fmt" "$T"
                [[ $status -eq 2 ]] || { echo "--format '$fmt': exit $status, expected 2" >&2; return 1; }
                [[ $stderr == "ferry: --format: "*"is no directive or escape"* ]] || { echo "$stderr" >&2; false; }
        done
        run --separate-stderr "$FERRY" watch --format '%e %p %r %n %f %o %s %%\t\n\0\\' --timeout 0.1 "$T"
        [[ $status -ne 2 ]]
}
