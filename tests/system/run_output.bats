#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_output.bats: with --output OUT the handler's stdout becomes OUT/NAME, moved into place only
# when the handler succeeds; with --stdin the file is its stdin. A failed run leaves neither
# OUT/NAME nor a temporary file.

load helpers

# out_listing OUT: every entry of OUT (hidden ones too), one per line, sorted.
out_listing() { find "$1" -mindepth 1 -printf '%P\n' | sort; }

@test "run: --output with --stdin and 'tr a-z A-Z': OUT/NAME holds the uppercased file, nothing else" {
        D=$T/in
        O=$T/out
        mkdir "$D" "$O"
        printf 'hello world\n' >"$D/one.txt"
        start_ferry "$T/ferry" run -j 2 --stdin --output "$O" "$D" -- tr a-z A-Z
        wait_run_started "$T/ferry"
        printf 'second file\nline two\n' >"$D/two.txt"
        # A bigger file, more than a pipe buffer.
        seq 1 20000 | sed 's/$/ abc/' >"$T/big.src"
        mv "$T/big.src" "$D/big"
        wait_files "$D/.ferry/done" 3 30
        stop_ferry "$T/ferry"

        printf 'HELLO WORLD\n' >"$T/want.one"
        printf 'SECOND FILE\nLINE TWO\n' >"$T/want.two"
        seq 1 20000 | sed 's/$/ ABC/' >"$T/want.big"
        assert_same_file "$T/want.one" "$O/one.txt"
        assert_same_file "$T/want.two" "$O/two.txt"
        assert_same_file "$T/want.big" "$O/big"
        # Nothing else in OUT: no temporary file left.
        printf '%s\n' big one.txt two.txt >"$T/want.listing"
        out_listing "$O" >"$T/listing"
        assert_same_file "$T/want.listing" "$T/listing"
        # The inputs are in done, unchanged.
        printf 'hello world\n' >"$T/want.in"
        assert_same_file "$T/want.in" "$D/.ferry/done/one.txt"
        assert_queue_empty "$D"
        assert_no_claims "$D"
}

@test "run: --output with a failing handler: no OUT/NAME and no temporary file" {
        D=$T/in
        O=$T/out
        mkdir "$D" "$O"
        printf 'hello\n' >"$D/job.txt"
        make_handler "$T/h.sh" 'echo partial output' 'exit 1'
        start_ferry "$T/ferry" run --retries 1 --retry-delay 0.1s --output "$O" "$D" -- "$T/h.sh" {}
        wait_for file_exists "$D/.ferry/failed/job.txt.ferry-error" 30
        stop_ferry "$T/ferry"

        out_listing "$O" >"$T/listing"
        [[ ! -s $T/listing ]] || {
                echo "OUT is not empty after a failed handler:" >&2
                cat -A "$T/listing" >&2
                return 1
        }
        [[ -f $D/.ferry/failed/job.txt ]]
}

@test "run: --output with a retry: OUT/NAME holds only the successful attempt's output" {
        D=$T/in
        O=$T/out
        mkdir "$D" "$O"
        printf 'hello\n' >"$D/job.txt"
        # Attempt 1 prints something, then fails; attempt 2 is the filter.
        make_handler "$T/h.sh" \
                'if [ "$FERRY_ATTEMPT" = 1 ]; then echo partial; exit 1; fi' \
                'exec tr a-z A-Z'
        start_ferry "$T/ferry" run --stdin --retries 1 --retry-delay 0.1s --output "$O" "$D" -- "$T/h.sh"
        wait_files "$D/.ferry/done" 1 30
        stop_ferry "$T/ferry"

        printf 'HELLO\n' >"$T/want"
        assert_same_file "$T/want" "$O/job.txt"
        printf 'job.txt\n' >"$T/want.listing"
        out_listing "$O" >"$T/listing"
        assert_same_file "$T/want.listing" "$T/listing"
}

@test "run: --output: a worker killed mid-handler leaves no temporary file once the next one adopts its claim" {
        D=$T/in
        O=$T/out
        mkdir "$D" "$O"
        printf 'payload\n' >"$D/job.txt"
        # Writes half its output, then waits to be killed with its ferry.
        make_handler "$T/slow.sh" 'echo half' 'echo $$ >"$1"' 'exec sleep 60'
        # A relative OUT: the note of the partial output must name it from anywhere.
        cd "$T"
        start_ferry "$T/ferry" run --output out "$D" -- "$T/slow.sh" "$T/handler"
        cd - >/dev/null
        wait_for file_exists "$T/handler" 30
        handler=$(cat "$T/handler")
        [[ -n $(find "$O" -name '.ferry-out.*') ]]
        kill -KILL "$FERRY_PID"
        wait_exit "$FERRY_PID" 10
        FERRY_PID=
        wait_for proc_gone "$handler" 10

        start_ferry "$T/ferry2" run --stdin --output "$O" "$D" -- tr a-z A-Z
        wait_files "$D/.ferry/done" 1 30
        stop_ferry "$T/ferry2"
        printf 'job.txt\n' >"$T/want.listing"
        out_listing "$O" >"$T/listing"
        assert_same_file "$T/want.listing" "$T/listing"
        printf 'PAYLOAD\n' >"$T/want"
        assert_same_file "$T/want" "$O/job.txt"
        assert_no_claims "$D"
}
