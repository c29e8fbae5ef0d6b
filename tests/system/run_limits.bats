#!/usr/bin/env bats
# run_limits.bats: --min-size, --max-size and --max-age: a file outside the limits goes to the
# failed folder untouched, with a note saying which limit, and its handler never runs; bad
# values are refused at --check.

load helpers

@test "run: a file below min-size, above max-size or older than max-age goes to failed unhandled, with a note" {
        mkdir "$T/in"
        head -c 10 /dev/urandom >"$T/in/small"
        head -c 5000 /dev/urandom >"$T/in/ok"
        head -c 200000 /dev/urandom >"$T/in/big"
        head -c 5000 /dev/urandom >"$T/in/old"
        touch -d '3 days ago' "$T/in/old"
        cp -p "$T/in/small" "$T/in/big" "$T/in/old" "$T/"
        printf '#!/bin/sh\nprintf "%%s\\n" "$FERRY_NAME" >>"%s/handled"\n' "$T" >"$T/h.sh"
        chmod +x "$T/h.sh"
        start_ferry "$T/ferry" run --min-size 1K --max-size 100KiB --max-age 2d "$T/in" -- "$T/h.sh" {}
        wait_files "$T/in/.ferry/failed" 6 30
        wait_files "$T/in/.ferry/done" 1 30
        stop_ferry "$T/ferry"
        [[ $(cat "$T/handled") == ok ]]
        for f in small big old; do
                assert_same_file "$T/$f" "$T/in/.ferry/failed/$f"
        done
        grep -qx 'reason: refused: 10 B is below min-size (1.0 KiB)' "$T/in/.ferry/failed/small.ferry-error"
        grep -qx 'reason: refused: 195.3 KiB is above max-size (100.0 KiB)' "$T/in/.ferry/failed/big.ferry-error"
        grep -qx 'reason: refused: last written 72h.* before it was found, more than max-age (48h00m)' \
                "$T/in/.ferry/failed/old.ferry-error"
        assert_log_has "$T/ferry" "big: failed (refused: 195.3 KiB is above max-size (100.0 KiB)) without a run"
        assert_no_claims "$T/in"
}

@test "run --check: sizes that are not sizes, min-size above max-size, and a max-age of 0 are refused" {
        mkdir "$T/in"
        for bad in 0 -1 1X 10KB2 K ''; do
                run --separate-stderr "$FERRY" run --check --max-size "$bad" "$T/in" -- /bin/true
                assert_status 2
                [[ $stderr == *"max-size: '$bad' is not a size"* ]]
        done
        run --separate-stderr "$FERRY" run --check --min-size 2M --max-size 1M "$T/in" -- /bin/true
        assert_status 2
        [[ $stderr == *"min-size is above max-size"* ]]
        run --separate-stderr "$FERRY" run --check --max-age 0s "$T/in" -- /bin/true
        assert_status 2
        run --separate-stderr "$FERRY" run --check --min-size 1 --max-size 1T --max-age 12h "$T/in" -- /bin/true
        assert_status 0
}
