#!/usr/bin/env bats
# watch_limit.bats: running out of inotify watches (fs.inotify.max_user_watches) is an error
# that names the path, the limit and the sysctl to raise, never a silent partial watch.

load helpers

# watches_in_use: inotify watches held now by root's processes (the limit is per user). An
# inotify fd shared by several processes is counted once per process: an over-estimate.
watches_in_use() {
        local dir total=0 n
        for dir in /proc/[0-9]*; do
                [[ $(stat -c %u "$dir" 2>/dev/null) == 0 ]] || continue
                n=$(cat "$dir"/fdinfo/* 2>/dev/null | grep -c '^inotify wd:' || true)
                total=$((total + ${n:-0}))
        done
        echo "$total"
}

# make_dirs DIR N: DIR/d1 .. DIR/dN.
make_dirs() {
        (cd "$1" && seq -f 'd%g' 1 "$2" | xargs mkdir --)
}

@test "watch limit: a tree with more directories than the limit allows: exit 1 naming path, limit and sysctl" {
        require_root "lowers fs.inotify.max_user_watches"
        D=$T/tree
        mkdir "$D"
        make_dirs "$D" 1000
        limit=$(($(watches_in_use) + 20))
        with_sysctl fs.inotify.max_user_watches "$limit"

        run --separate-stderr timeout 60 "$FERRY" watch -r "$D"
        # Give the watches back before asserting anything.
        restore_sysctls
        assert_status 1
        [[ -z $output ]] || { echo "unexpected stdout: $output" >&2; return 1; }
        [[ $(printf '%s\n' "$stderr" | wc -l) -eq 1 ]] || { echo "stderr is not one line: $stderr" >&2; return 1; }
        [[ $stderr == "ferry: "* ]] || { echo "stderr does not start with 'ferry: ': $stderr" >&2; return 1; }
        [[ $stderr == *fs.inotify.max_user_watches* ]] || { echo "stderr does not name the sysctl: $stderr" >&2; return 1; }
        [[ $stderr == *"$D"* ]] || { echo "stderr does not name the path: $stderr" >&2; return 1; }
        [[ $stderr =~ (^|[^0-9])$limit([^0-9]|$) ]] || { echo "stderr does not state the limit $limit: $stderr" >&2; return 1; }
        # It exits: nothing is listed instead, and the message does not say it is.
        [[ $stderr != *"listed every"* ]] || { echo "stderr promises a listing that an exit never makes: $stderr" >&2; return 1; }
}

@test "watch limit: subdirectories created later beyond the limit: error event and message, ferry keeps watching" {
        require_root "lowers fs.inotify.max_user_watches"
        D=$T/tree
        mkdir "$D"
        limit=$(($(watches_in_use) + 20))
        with_sysctl fs.inotify.max_user_watches "$limit"
        start_ferry "$T/out" watch -r --events close_write "$D"
        probe_until_seen "$D" "$T/out"

        make_dirs "$D" 1000
        wait_for has_text "$T/out.err" fs.inotify.max_user_watches 30
        wait_for has_text "$T/out" error 30
        grep -aE '^error( |$)' "$T/out" >/dev/null || { echo "no error event line:" >&2; cat -v "$T/out" >&2; return 1; }
        grep -a 'fs.inotify.max_user_watches' "$T/out.err" | grep -aqF "$D/d" || {
                echo "the message does not name the directory that could not be watched:" >&2
                cat -v "$T/out.err" >&2
                return 1
        }

        # The error is reported, not fatal: the rest of the tree is still watched.
        if proc_gone "$FERRY_PID"; then
                wait_exit "$FERRY_PID" 1
                FERRY_PID=
                echo "ferry exited with $EXIT_RC after the error event instead of watching on; stderr:" >&2
                head -3 "$T/out.err" | cat -v >&2
                return 1
        fi
        printf x >"$D/still-here"
        wait_line "$T/out" "close_write $D/still-here" 30
        stop_ferry "$T/out"
}

# past_the_limit: ferry watch -r --ready on $T/tree with 20 watches to spare, then 60 folders
# made in it, and a file written in d50, d55 and d60, some of which could not be watched.
past_the_limit() {
        require_root "lowers fs.inotify.max_user_watches"
        D=$T/tree
        mkdir "$D"
        limit=$(($(watches_in_use) + 20))
        with_sysctl fs.inotify.max_user_watches "$limit"
        start_ferry "$T/out" watch -r --ready=close=10ms -0 "$D"
        wait_watches "$FERRY_PID" 1 30

        make_dirs "$D" 60
        wait_for has_text "$T/out.err" "until then it is listed every 5 s instead" 30
        for i in 50 55 60; do printf 'late %s\n' "$i" >"$D/d$i/file"; done
        printf '%s\0' "$D/d50/file" "$D/d55/file" "$D/d60/file" >"$T/want"
}

@test "watch limit: folders that could not be watched are watched once watches are free: nothing lost" {
        past_the_limit
        restore_sysctls
        # The retry (every 5 s) watches the folders; their files are found.
        wait_nul_records "$T/out" 3 60
        assert_same_nul_set "$T/want" "$T/out"
        wait_for has_watches "$FERRY_PID" 61 30
        stop_ferry "$T/out"
}

@test "watch limit: while the limit holds, folders that could not be watched are listed every 5 s: their files come" {
        past_the_limit
        # The limit is not raised: the listing finds them.
        wait_nul_records "$T/out" 3 30
        assert_same_nul_set "$T/want" "$T/out"
        stop_ferry "$T/out"
}
