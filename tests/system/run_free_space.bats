#!/usr/bin/env bats
# run_free_space.bats: --pause-when-free-below: no handler starts while the file system of the
# done (failed, output) folder has less free than the limit; the files wait, and are handled
# once there is room again. A 4 MiB tmpfs stands in for a disk that fills up.

load helpers

setup() {
        ferry_setup
        MOUNTED=
}

teardown() {
        kill_background
        if [[ -n $MOUNTED ]]; then
                umount -l "$MOUNTED" 2>/dev/null || true
        fi
        ferry_teardown
}

@test "run: with the done folder's file system below pause-when-free-below, no handler starts; once there is room, every file is handled" {
        require_root "mounts a small tmpfs"
        mkdir "$T/small"
        mount -t tmpfs -o size=4m ferry-test "$T/small" || skip "cannot mount a tmpfs"
        MOUNTED=$T/small
        D=$T/small/in
        mkdir "$D"
        head -c 3M /dev/zero >"$T/small/ballast" # less than 1 MiB of 4 free: below a quarter
        make_numbered "$D" f 1 20
        make_handler "$T/h.sh" 'printf "%s\n" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/ferry" run --pause-when-free-below 50% "$D" -- "$T/h.sh" "$T/handled"
        wait_for has_text "$T/ferry.err" "paused: the file system of $D/.ferry/done has " 30
        # Files that were there at the start would have been handled within milliseconds.
        sleep 1.5
        [[ ! -e $T/handled ]]
        [[ $(find "$D" -maxdepth 1 -type f | wc -l) -eq 20 ]]
        rm "$T/small/ballast"
        wait_files "$D/.ferry/done" 20 30
        wait_for has_text "$T/ferry.err" "resumed: the file systems of its done, failed and output folders have room" 30
        stop_ferry "$T/ferry"
        [[ $(count_lines "$T/handled") -eq 20 ]]
}

@test "run: pause-when-free-below takes a percentage or a size, and refuses anything else" {
        mkdir "$T/in"
        local v
        for v in 5% 0.5% 10G 512M; do
                run "$FERRY" run --check --pause-when-free-below "$v" "$T/in" -- /bin/true
                ((status == 0)) || {
                        echo "$v: $output" >&2
                        false
                }
        done
        for v in 0% 100% %5 -3% 5%% abc ''; do
                run "$FERRY" run --check --pause-when-free-below "$v" "$T/in" -- /bin/true
                ((status == 2)) || {
                        echo "'$v' accepted: $output" >&2
                        false
                }
        done
}
