#!/usr/bin/env bats
# run_max_folders.bats: a recursive rule watches at most --max-folders folders, so that a tree
# that others can fill with folders cannot take every inotify watch of ferry's user (root's,
# often, shared with every root process). Beyond the cap, as many folders again are listed
# every 5 s instead, so their files are still handled; beyond those, files wait. Each is said,
# rate-limited, and the rule goes on.

load helpers

@test "run -r --max-folders 10: folders beyond the cap are listed every 5 s, their files handled; at most 10 watches" {
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" 'printf "%s\0" "${FERRY_ORIGINAL_PATH#"$2"/}" >>"$1"'
        start_ferry "$T/run" run -r --max-folders 10 "$D" -- "$T/h.sh" "$T/handled" "$D"
        wait_run_started "$T/run"
        local i
        for ((i = 1; i <= 15; i++)); do mkdir "$D/d$i"; done
        wait_for has_text "$T/run.err" "cap of 10 watched folders is reached" 30
        # In a watched folder, in polled ones (made before and after the file), and at the top.
        printf 'x\n' >"$D/d1/early"
        printf 'y\n' >"$D/d15/polled"
        mkdir "$D/d14/sub"
        printf 'z\n' >"$D/d14/sub/deeper"
        printf 'w\n' >"$D/late"
        wait_nul_records "$T/handled" 4 30
        local watches
        watches=$(inotify_watches "$FERRY_PID")
        ((watches <= 10)) || { echo "$watches inotify watches held, the cap is 10" >&2; false; }
        assert_log_has "$T/run" "cannot watch $D/d15: this rule's cap of 10 watched folders is reached"
        assert_log_has "$T/run" "it is listed every 5 s instead"

        # Beyond as many polled folders again: said, and their files wait.
        for ((i = 16; i <= 30; i++)); do mkdir "$D/d$i"; done
        wait_for has_text "$T/run.err" "folders are watched and 10 listed every 5 s, the most there may be" 30
        stop_ferry "$T/run"
        printf 'd1/early\0d15/polled\0d14/sub/deeper\0late\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        # Each message names the folder it could not watch and why.
        [[ -z $(grep 'cannot watch' "$T/run.err" | grep -v -e 'cap of 10 watched folders' -e 'the most there may be') ]]
}
