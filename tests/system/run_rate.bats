#!/usr/bin/env bats
# run_rate.bats: --rate N/s starts handlers at most N times a second (a token bucket that
# holds a second's worth: a burst after a quiet second starts at once), measured from the
# handlers' own start times; bad rates are refused at --check.

load helpers

@test "run --rate 20/s: after the first second's 20, handlers start 20 a second (within 10%)" {
        mkdir "$T/in"
        for i in $(seq 1 70); do printf '%s\n' "$i" >"$T/in/f$i"; done
        printf '#!/bin/sh\ndate +%%s.%%N >>"%s/starts"\n' "$T" >"$T/h.sh"
        chmod +x "$T/h.sh"
        start_ferry "$T/ferry" run --rate 20/s -j 8 "$T/in" -- "$T/h.sh" {}
        wait_files "$T/in/.ferry/done" 70 60
        stop_ferry "$T/ferry"
        python3 - "$T/starts" <<'PY'
import sys
t = sorted(float(line) for line in open(sys.argv[1]))
assert len(t) == 70, len(t)
burst = t[19] - t[0]
rest = t[20:]
rate = (len(rest) - 1) / (rest[-1] - rest[0])
print(f"first 20 within {burst:.3f} s; then {rate:.2f} starts a second", file=sys.stderr)
assert 18 <= rate <= 22, rate
# never faster than the bucket allows: any second holds at most 20 + 20 starts
for i, start in enumerate(t):
    assert sum(1 for u in t[i:] if u < start + 1) <= 41, (i, start)
PY
}

@test "run --check: a rate that is not N/s, N/m or N/h is refused; rate = 90/m in ferry.conf is valid" {
        mkdir "$T/in"
        for bad in 20 fast 0/s -1/s 20/d /s; do
                run --separate-stderr "$FERRY" run --check --rate "$bad" "$T/in" -- /bin/true
                assert_status 2
                [[ $stderr == *"rate: '$bad' is not N/s, N/m or N/h"* ]]
        done
        printf '[rule r]\ndir = %s/in\nrate = 90/m\ncommand = /bin/true {}\n' "$T" >"$T/ferry.conf"
        run --separate-stderr "$FERRY" run -c "$T/ferry.conf" --check
        assert_status 0
}
