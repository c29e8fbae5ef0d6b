#!/usr/bin/env bats
# run_marker_load.bats: a done-marker's SHA-256 is read off the event loop, so that a writer
# who names a huge file in a marker cannot stall every other file; the verdicts stay right for
# files longer than one slice of the check.

load helpers

@test "run --ready done-file: a marker naming a 1 TiB sparse file stalls nothing; small files are handled while it is read; a stop is prompt" {
        mkdir "$T/in" "$T/src"
        truncate -s 1T "$T/src/huge" || skip "this file system cannot hold a 1 TiB sparse file"
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/run" run --ready done-file "$T/in" -- "$T/h.sh" "$T/handled"
        wait_run_started "$T/run"
        # The marker claims the size (so the size alone cannot refute it) and a wrong hash:
        # only reading all of it could tell, which takes minutes.
        mv "$T/src/huge" "$T/in/huge"
        printf 'ferry-marker 1\nsize 1099511627776\nsha256 %064d\n' 0 >"$T/huge.done"
        mv "$T/huge.done" "$T/in/huge.done"
        local i
        for i in 1 2 3 4 5; do
                printf 'small %s\n' "$i" >"$T/src/small$i"
                "$FERRY" put --marker "$T/src/small$i" "$T/in"
        done
        wait_nul_records "$T/handled" 5 30
        stop_ferry "$T/run"
        printf 'small1\0small2\0small3\0small4\0small5\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        # The huge one was neither handed out nor lost.
        [[ -f $T/in/huge ]]
}

@test "run --ready done-file: files of several slices are checked right: a good one handled, one with a byte changed refused" {
        mkdir "$T/in"
        head -c $((40 << 20)) /dev/urandom >"$T/good.bin"
        cp "$T/good.bin" "$T/bad.bin"
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/run" run --ready done-file "$T/in" -- "$T/h.sh" "$T/handled"
        wait_run_started "$T/run"
        # bad.bin: its marker is good.bin's; one byte near its end differs, its size does not.
        "$FERRY" put --marker "$T/good.bin" "$T/stage.bin"
        printf 'X' | dd of="$T/bad.bin" bs=1 seek=$(((40 << 20) - 10)) conv=notrunc status=none
        cmp -s "$T/good.bin" "$T/bad.bin" && false
        mv "$T/bad.bin" "$T/in/bad.bin"
        cp "$T/stage.bin.done" "$T/in/bad.bin.done"
        "$FERRY" put --marker "$T/good.bin" "$T/in"
        wait_for has_text "$T/run.err" 'does not match its done-marker' 60
        wait_nul_records "$T/handled" 1 60
        stop_ferry "$T/run"
        printf 'good.bin\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        [[ -f $T/in/bad.bin ]]
        [[ $(grep -c 'does not match its done-marker' "$T/run.err") -eq 1 ]]
}
