#!/usr/bin/env bats
# run_log_rate.bats: what anyone who can write into a folder can make ferry run say is
# bounded: warnings beyond 20 a second are counted and said in one line, none is lost from the
# count, and the honest files are handled all the same.

load helpers

all_accounted() {
        local n
        said=$(grep -c 'skipped: a symlink' "$T/ferry.err" || true)
        counted=0
        for n in $(sed -n 's/.*suppressed \([0-9]*\) similar message.*/\1/p' "$T/ferry.err"); do
                counted=$((counted + n))
        done
        ((said + counted == 2000))
}

@test "run: 2,000 symbolic links give at most a second's worth of warnings and one count of the rest; the honest file is handled" {
        D=$T/in
        mkdir "$D"
        local i
        for ((i = 1; i <= 2000; i++)); do ln -s /etc/hostname "$D/link$i"; done
        printf 'honest\n' >"$D/honest"
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/ferry" run "$D" -- "$T/h.sh" "$T/handled"
        wait_for file_exists "$D/.ferry/done/honest" 30
        # Every link is accounted for: said, or counted in a "suppressed" line, which comes
        # when the second they were counted in ends, whatever else happens.
        wait_for all_accounted 30 || {
                echo "said $said, counted $counted: not 2000" >&2
                false
        }
        stop_ferry "$T/ferry"
        printf 'honest\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        ((said < 2000 / 4))
        # The links are left where they were.
        [[ $(find "$D" -maxdepth 1 -type l | wc -l) -eq 2000 ]]
}
