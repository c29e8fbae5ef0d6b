#!/usr/bin/env bats
# run_order.bats: --order and --priority decide which of the waiting files is claimed first.
# The rule starts paused, so that every file is waiting (the metrics say so) before the first
# is taken; with -j 1 the handlers' order is the order of the claims.

load helpers

# run_ordered ARGS...: ferry run ARGS on $T/in, paused until all N=$N files wait; the handler
# appends its file's name to $T/order.
run_ordered() {
        printf '#!/bin/sh\nprintf "%%s\\n" "$FERRY_NAME" >>"%s/order"\n' "$T" >"$T/h.sh"
        chmod +x "$T/h.sh"
        "$FERRY" pause --dir "$T/in" >/dev/null
        start_ferry "$T/ferry" run -j 1 --metrics-file "$T/m.prom" "$@" "$T/in" -- "$T/h.sh" {}
        wait_for has_line "$T/m.prom" "ferry_queue_depth $N" 60
        "$FERRY" resume --dir "$T/in" >/dev/null
        wait_lines "$T/order" "$N" 120
        stop_ferry "$T/ferry"
}

@test "run --order name -j 1: 1,000 files, found in any order, are handled in the order of their names" {
        mkdir "$T/in"
        N=1000
        python3 -c '
import random, sys
names = [f"{random.randrange(10**6):06d}-{i}" for i in range(1000)]
random.shuffle(names)
for n in names:
    open(sys.argv[1] + "/" + n, "w").write(n)
' "$T/in"
        run_ordered --order name
        LC_ALL=C sort "$T/order" >"$T/sorted"
        assert_same_file "$T/sorted" "$T/order"
        [[ -z $(uniq -d "$T/order") ]]
}

@test "run --priority: files matching earlier globs first, then --order size-desc; the rest as ordered" {
        mkdir "$T/in"
        N=6
        head -c 100 /dev/zero >"$T/in/a.csv"
        head -c 300 /dev/zero >"$T/in/b.csv"
        head -c 200 /dev/zero >"$T/in/urgent-1.csv"
        head -c 900 /dev/zero >"$T/in/urgent-2.csv"
        head -c 50 /dev/zero >"$T/in/x.vip"
        head -c 5000 /dev/zero >"$T/in/z.txt"
        run_ordered --priority 'urgent-*' --priority '*.vip' --order size-desc
        printf '%s\n' urgent-2.csv urgent-1.csv x.vip z.txt b.csv a.csv >"$T/want"
        assert_same_file "$T/want" "$T/order"
}

@test "run --check: an order that is not one is refused" {
        mkdir "$T/in"
        for bad in random ready-desc name-up ''; do
                run --separate-stderr "$FERRY" run --check --order "$bad" "$T/in" -- /bin/true
                assert_status 2
                [[ $stderr == *"order: '$bad' is not ready, name, mtime or size"* ]]
        done
        run --separate-stderr "$FERRY" run --check --order mtime-desc "$T/in" -- /bin/true
        assert_status 0
}
