#!/usr/bin/env bats
# folder_marker.bats: --ready=done-file=NAME with a folder-wide marker (such as _SUCCESS)
# vouches for the files that were in its folder before it was written or touched. One left
# behind does not make a file that arrives later ready at once; the producer's next marker
# (or the same one touched again) does.

load helpers

# sync_probe DIR OUT: a probe file and then the marker in DIR/p, and waits until OUT names the
# probe: ferry has seen everything that happened before (one kernel queue, in order).
sync_probe() {
        PROBE_N=$((PROBE_N + 1))
        printf 'probe\n' >"$1/p/end-probe-$PROBE_N"
        touch "$1/p/_SUCCESS"
        wait_for has_text "$2" "end-probe-$PROBE_N" 30
}

@test "watch: a folder-wide marker makes the files written before it ready, not those that come after it, until it is touched again" {
        D=$T/in
        mkdir -p "$D/p"
        start_ferry "$T/out" watch -r --ready=done-file=_SUCCESS --format '%p\n' "$D"
        local i=0
        until grep -q end-probe "$T/out" 2>/dev/null; do
                ((++i < 300)) || false
                sync_probe "$D" "$T/out" 2>/dev/null || true
        done
        printf 'a\n' >"$D/a"
        printf 'b\n' >"$D/b"
        sync_probe "$D" "$T/out"
        refute grep -q "^$D/[ab]\$" "$T/out"
        touch "$D/_SUCCESS"
        wait_line "$T/out" "$D/a" 30
        wait_line "$T/out" "$D/b" 30
        # Later files wait for a newer marker.
        printf 'c\n' >"$D/c"
        sleep 0.01
        sync_probe "$D" "$T/out"
        refute grep -q "^$D/c\$" "$T/out"
        touch "$D/_SUCCESS"
        wait_line "$T/out" "$D/c" 30
        sync_probe "$D" "$T/out"
        stop_ferry "$T/out"
        [[ $(grep -c "^$D/[abc]\$" "$T/out") -eq 3 ]]
        refute grep -q "_SUCCESS" "$T/out"
}

@test "run: a _SUCCESS left behind by one batch does not hand out the next batch's files before its own marker" {
        D=$T/in
        mkdir -p "$D/p"
        make_handler "$T/h.sh" 'printf "%s\n" "$FERRY_NAME" >>"$1"'
        printf '1\n' >"$D/batch1-x"
        printf '1\n' >"$D/batch1-y"
        touch "$D/_SUCCESS"
        start_ferry "$T/ferry" run -r --ready=done-file=_SUCCESS "$D" -- "$T/h.sh" "$T/handled"
        wait_lines "$T/handled" 2 30
        printf '2\n' >"$D/batch2-x"
        sleep 0.01
        sync_probe "$D" "$T/handled"
        refute grep -q batch2 "$T/handled"
        run "$FERRY" explain --dir "$D" -r --ready=done-file=_SUCCESS "$D/batch2-x"
        [[ $output == *marker* ]]
        touch "$D/_SUCCESS"
        wait_for has_text "$T/handled" batch2-x 30
        stop_ferry "$T/ferry"
        [[ $(grep -c '^batch' "$T/handled") -eq 3 ]]
}
