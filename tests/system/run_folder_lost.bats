#!/usr/bin/env bats
# run_folder_lost.bats: a rule's folder that goes away while `ferry run` works (deleted and
# made again, moved away and back, a file system mounted on it or unmounted, its file server
# dead) is said once in the log and taken up again when it is back: the files made in it
# meanwhile are handled, once each, and other rules go on. require-file keeps an empty mount
# point from being taken for the folder; on-folder-lost = exit stops instead, with status 1,
# for a supervisor to restart.

load helpers

setup() {
        ferry_setup
        MOUNTED=
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
}

teardown() {
        if [[ -n $MOUNTED ]]; then
                fusermount -u "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED" 2>/dev/null || true
        fi
        ferry_teardown
}

# handled_set WANT...: the handler was given exactly these names, once each.
handled_set() {
        printf '%s\0' "$@" >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
}

log_count() { grep -c -- "$2" "$1.err" || true; }

# tmpfs_with DIR...: a tmpfs on $T/fs (gone at teardown) holding the folders $T/fs/DIR...
tmpfs_with() {
        mkdir "$T/fs" "$T/kept"
        mount -t tmpfs ferry-test "$T/fs"
        MOUNTED=$T/fs
        local d
        for d in "$@"; do mkdir "$T/fs/$d"; done
}

# unmounted_a_moment COMMAND...: the tmpfs kept reachable at $T/kept, unmounted from $T/fs,
# COMMAND run meanwhile (writing through $T/kept, as a file server's other clients write),
# then, longer than a quiet time later, mounted back on $T/fs: within the second in which
# ferry looks for its folder.
unmounted_a_moment() {
        mount --bind "$T/fs" "$T/kept"
        umount -l "$T/fs"
        "$@"
        sleep 0.4 # what was written is looked at while the folder's path leads nowhere
        mount --move "$T/kept" "$T/fs"
}

@test "run: the folder deleted and made again is said once and taken up again; files in the new one are handled once" {
        mkdir "$T/in"
        start_ferry "$T/run" run "$T/in" -- "$T/h.sh" "$T/handled"
        wait_run_started "$T/run"
        echo 1 >"$T/in/before"
        wait_nul_records "$T/handled" 1 10
        rm -rf "$T/in"
        wait_for has_text "$T/run.err" "$T/in was deleted: its files wait" 10
        mkdir "$T/in"
        echo 2 >"$T/in/after"
        wait_for has_text "$T/run.err" "$T/in is back: taken up again" 15
        wait_nul_records "$T/handled" 2 10
        echo 3 >"$T/in/later"
        wait_nul_records "$T/handled" 3 10
        proc_alive "$FERRY_PID"
        stop_ferry "$T/run"
        handled_set before after later
        [[ $(log_count "$T/run" 'was deleted') -eq 1 ]]
        [[ -e $T/in/.ferry/done/after && -e $T/in/.ferry/done/later ]]
        assert_queue_empty "$T/in"
        assert_no_claims "$T/in"
}

@test "run: the folder moved away and back: files dropped meanwhile (in it, and in the path's place) are handled once" {
        mkdir "$T/in"
        start_ferry "$T/run" run "$T/in" -- "$T/h.sh" "$T/handled"
        wait_run_started "$T/run"
        mv "$T/in" "$T/away"
        wait_for has_text "$T/run.err" "$T/in went away" 10
        echo 1 >"$T/away/while-away"
        # Another folder in its place for a while: taken up, then left again.
        mkdir "$T/in"
        echo 2 >"$T/in/stand-in"
        wait_nul_records "$T/handled" 1 15
        mv "$T/in" "$T/stand-in-folder"
        mv "$T/away" "$T/in"
        wait_nul_records "$T/handled" 2 15
        stop_ferry "$T/run"
        handled_set while-away stand-in
        [[ -e $T/in/.ferry/done/while-away && -e $T/stand-in-folder/.ferry/done/stand-in ]]
        assert_no_claims "$T/in"
        assert_no_claims "$T/stand-in-folder"
}

@test "run: a file system mounted on the folder and unmounted; with require-file, an empty mount point is not the folder" {
        require_root "mounts a tmpfs"
        mkdir "$T/in"
        touch "$T/in/.mounted"
        start_ferry "$T/run" run --require-file .mounted "$T/in" -- "$T/h.sh" "$T/handled"
        wait_run_started "$T/run"
        echo 1 >"$T/in/first"
        wait_nul_records "$T/handled" 1 10
        # A file system without the marker: not taken, nothing made in it.
        mount -t tmpfs ferry-test "$T/in"
        MOUNTED=$T/in
        echo 2 >"$T/in/on-the-mount"
        wait_for has_text "$T/run.err" "$T/in has no .mounted (require-file)" 15
        sleep 1.5 # a retry or two: still not taken
        [[ ! -e $T/in/.ferry ]]
        [[ $(count_nul "$T/handled") -eq 1 ]]
        touch "$T/in/.mounted"
        wait_nul_records "$T/handled" 2 40
        # Unmounted: the folder beneath, with its own .ferry, is taken up again.
        umount -l "$T/in"
        MOUNTED=
        echo 3 >"$T/in/beneath"
        wait_nul_records "$T/handled" 3 40
        stop_ferry "$T/run"
        handled_set first on-the-mount beneath
        [[ -e $T/in/.ferry/done/first && -e $T/in/.ferry/done/beneath && -e $T/in/.mounted ]]
        assert_no_claims "$T/in"
}

@test "run: the folder's file server dies (a FUSE daemon killed: ENOTCONN): said once; mounted again, its files are handled once" {
        mount_bindfs "$T/server" "$T/in"
        start_ferry "$T/run" run --poll-interval 1s "$T/in" -- "$T/h.sh" "$T/handled"
        wait_run_started "$T/run"
        echo 1 >"$T/in/before"
        wait_nul_records "$T/handled" 1 15
        pkill -9 -xf "bindfs $T/server $T/in"
        wait_for has_text "$T/run.err" "$T/in cannot be read any more (Transport endpoint is not connected)" 15
        echo 2 >"$T/server/while-down" # as another machine writes on the server meanwhile
        sleep 1.5                       # a retry or two: the dead mount is not taken up
        umount -l "$T/in"
        bindfs "$T/server" "$T/in"
        wait_for has_text "$T/run.err" "$T/in is back: taken up again" 40
        wait_nul_records "$T/handled" 2 15
        echo 3 >"$T/server/after"
        wait_nul_records "$T/handled" 3 15
        stop_ferry "$T/run"
        handled_set before while-down after
        [[ $(log_count "$T/run" 'cannot be read any more') -eq 1 ]]
        [[ -e $T/server/.ferry/done/while-down && -e $T/server/.ferry/done/after ]]
        assert_no_claims "$T/server"
}

@test "run: the file system above the folder unmounted for a moment and mounted again: a file written meanwhile is handled" {
        require_root "mounts a tmpfs"
        tmpfs_with in
        # A handler that reads its standard input: it needs no path while the folder's path is gone.
        make_handler "$T/cat.sh" 'cat >/dev/null && printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/run" run --stdin "$T/fs/in" -- "$T/cat.sh" "$T/handled"
        wait_run_started "$T/run"
        echo 1 >"$T/fs/in/before"
        wait_nul_records "$T/handled" 1 10
        unmounted_a_moment sh -c 'echo 2 >"$1/kept/in/meanwhile"' sh "$T"
        wait_nul_records "$T/handled" 2 15
        echo 3 >"$T/fs/in/after"
        wait_nul_records "$T/handled" 3 15
        stop_ferry "$T/run"
        handled_set before meanwhile after
        assert_no_claims "$T/fs/in"
}

@test "run: done-file: a file and its marker put while the folder's file system is unmounted for a moment are handled" {
        require_root "mounts a tmpfs"
        tmpfs_with in stage
        make_handler "$T/cat.sh" 'cat >/dev/null && printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/run" run --ready done-file --stdin "$T/fs/in" -- "$T/cat.sh" "$T/handled"
        wait_run_started "$T/run"
        echo 2 >"$T/fs/stage/meanwhile"
        unmounted_a_moment "$FERRY" put --marker "$T/kept/stage/meanwhile" "$T/kept/in"
        wait_nul_records "$T/handled" 1 15
        stop_ferry "$T/run"
        handled_set meanwhile
        assert_no_claims "$T/fs/in"
}

@test "run: require-file missing at start is an error naming the folder and the file; nothing is made in the folder" {
        mkdir "$T/in"
        run "$FERRY" run --require-file .mounted "$T/in" -- /bin/true
        [[ $status -eq 1 ]]
        [[ $output == *"$T/in has no .mounted (require-file)"* ]]
        [[ ! -e $T/in/.ferry ]]
        run "$FERRY" run --require-file a/b "$T/in" -- /bin/true
        [[ $status -eq 2 ]]
        [[ $output == *"require-file: 'a/b' is not a plain file name"* ]]
}

@test "run: on-folder-lost = exit: the folder deleted, ferry lets the running handler finish and exits with 1" {
        mkdir "$T/in"
        make_handler "$T/slow.sh" 'sleep 1; printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/run" run --on-folder-lost exit "$T/in" -- "$T/slow.sh" "$T/handled"
        wait_run_started "$T/run"
        echo 1 >"$T/in/one"
        wait_for has_text "$T/run.err" "started" 10
        mv "$T/in" "$T/away"
        wait_exit "$FERRY_PID" 30
        FERRY_PID=
        [[ $EXIT_RC -eq 1 ]]
        assert_log_has "$T/run" "$T/in went away (deleted, moved or unmounted): stopping (on-folder-lost = exit)"
        [[ $(log_count "$T/run" 'stopping (on-folder-lost = exit)') -eq 1 ]]
        handled_set one
        [[ -e $T/away/.ferry/done/one ]]
}

@test "run: one rule's folder gone, the other rule goes on; the metrics say which folder is gone" {
        mkdir "$T/a" "$T/b"
        printf '[ferry]\nmetrics-file = %s\n\n[rule a]\ndir = %s\ncommand = %s %s\n\n[rule b]\ndir = %s\ncommand = %s %s\n' \
                "$T/m.prom" "$T/a" "$T/h.sh" "$T/handled" "$T/b" "$T/h.sh" "$T/handled" >"$T/ferry.conf"
        start_ferry "$T/run" run -c "$T/ferry.conf"
        wait_for has_lines "$T/run.err" 2 10
        rm -rf "$T/a"
        wait_for has_text "$T/run.err" "$T/a was deleted" 10
        echo 1 >"$T/b/still"
        wait_nul_records "$T/handled" 1 10
        wait_for has_line "$T/m.prom" 'ferry_folders_lost 1' 15
        has_line "$T/m.prom" 'ferry_rule_up{rule="a"} 0'
        has_line "$T/m.prom" 'ferry_rule_up{rule="b"} 1'
        mkdir "$T/a"
        echo 2 >"$T/a/back"
        wait_nul_records "$T/handled" 2 15
        wait_for has_line "$T/m.prom" 'ferry_folders_lost 0' 15
        has_line "$T/m.prom" 'ferry_rule_up{rule="a"} 1'
        stop_ferry "$T/run"
        handled_set still back
}
