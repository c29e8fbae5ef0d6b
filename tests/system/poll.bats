#!/usr/bin/env bats
# poll.bats: on a FUSE mount (bindfs here, as sshfs or smbnetfs would be), inotify sees only
# this machine's writes through the mount; ferry detects the file system, polls, and sees
# writes made behind the mount's back (as another machine's would be) within two intervals.

load helpers

mount_fuse() { mount_bindfs "$T/server" "$T/mnt"; }

teardown() {
        [[ -n ${MOUNTED:-} ]] && { fusermount -u "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED"; }
        ferry_teardown
}

@test "poll: a FUSE mount is polled, and a write behind it shows within twice the interval" {
        mount_fuse
        start_ferry "$T/out" watch --poll-interval 1s --events create "$T/mnt"
        wait_for has_text "$T/out.err" "poll every 1s and inotify (fuse" 30
        wait_watches "$FERRY_PID" 1 30
        sleep 1.1 # let one poll pass: the write below then falls inside a whole interval
        start=$(now_us)
        printf 'from the server\n' >"$T/server/remote.txt"
        wait_line "$T/out" "create $T/mnt/remote.txt" 10
        took=$(elapsed_ms "$start")
        echo "# seen after ${took} ms (interval 1000 ms)" >&3
        ((took <= 2000 * SLOW)) || { echo "seen after ${took} ms, more than two intervals" >&2; return 1; }
        stop_ferry "$T/out"
}

@test "poll: --ready on a polled mount: ready once, after it settled, never while growing" {
        mount_fuse
        start_ferry "$T/out" watch --ready --poll-interval 200ms -0 "$T/mnt"
        wait_watches "$FERRY_PID" 1 30
        # A slow writer behind the mount: 6 chunks, 0.15 s apart (less than the settle time).
        for i in 1 2 3 4 5 6; do printf 'chunk %s\n' "$i" >>"$T/server/slow.txt"; sleep 0.15; done
        printf 'x' >"$T/mnt/local.txt"
        wait_nul_records "$T/out" 2 30
        stop_ferry "$T/out"
        printf '%s\0' "$T/mnt/slow.txt" "$T/mnt/local.txt" >"$T/want"
        assert_same_nul_set "$T/want" "$T/out"
}

@test "poll: --backend inotify on a FUSE mount misses writes behind it (why ferry polls)" {
        mount_fuse
        start_ferry "$T/out" watch --backend inotify --events create "$T/mnt"
        wait_watches "$FERRY_PID" 1 30
        printf 'x' >"$T/server/unseen.txt"
        printf 'x' >"$T/mnt/seen.txt"
        wait_line "$T/out" "create $T/mnt/seen.txt" 10
        stop_ferry "$T/out"
        refute grep -q unseen "$T/out"
}

@test "run on a FUSE mount: handled files reach the done folder (no RENAME_NOREPLACE there)" {
        mount_fuse
        make_handler "$T/h.sh" 'printf "%s\n" "$1" >>"'"$T"'/handled"'
        printf 'a' >"$T/server/one.csv"
        printf 'b' >"$T/server/two.csv"
        start_ferry "$T/run" run --poll-interval 200ms "$T/mnt" -- "$T/h.sh" {name}
        wait_files "$T/mnt/.ferry/done" 2 30
        stop_ferry "$T/run"
        [[ $(sort "$T/handled") == $'one.csv\ntwo.csv' ]]
        [[ -f $T/server/.ferry/done/one.csv && -f $T/server/.ferry/done/two.csv ]]
        assert_no_claims "$T/mnt"
}
