#!/usr/bin/env bats
# run_max_folders.bats: a recursive rule watches at most --max-folders folders, so that a tree
# that others can fill with folders cannot take every inotify watch of ferry's user (root's,
# often, shared with every root process); beyond the cap it says so, rate-limited, and goes on.

load helpers

@test "run -r --max-folders 10: 40 folders made, at most 10 watches held, the cap said, the rule goes on" {
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/run" run -r --max-folders 10 "$D" -- "$T/h.sh" "$T/handled"
        wait_run_started "$T/run"
        local i
        for ((i = 1; i <= 40; i++)); do mkdir "$D/d$i"; done
        wait_for has_text "$T/run.err" "cap of 10 watched folders is reached" 30
        printf 'x\n' >"$D/d1/early"
        printf 'y\n' >"$D/late"
        wait_nul_records "$T/handled" 2 30
        local watches
        watches=$(inotify_watches "$FERRY_PID")
        ((watches <= 10)) || { echo "$watches inotify watches held, the cap is 10" >&2; false; }
        stop_ferry "$T/run"
        printf 'early\0late\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        # Each message names the folder it could not watch and the cap.
        ! grep 'cannot watch' "$T/run.err" | grep -v 'cap of 10 watched folders'
}
