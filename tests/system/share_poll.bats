#!/usr/bin/env bats
# share_poll.bats: a watcher on a client's mount of a real file server (sshfs through sshd,
# smbnetfs through Samba) sees, by polling, files that inotify there never reports: written
# on the server itself and by another client. Each is reported ready once, complete. The
# delay is printed (the interval is 500 ms), not asserted.

load helpers

poll_skip() {
        hosts_missing sshfs smbnetfs smbclient ssh-keygen smbpasswd /usr/sbin/sshd /usr/sbin/smbd
}

setup_file() {
        [[ -z $(poll_skip) ]] || return 0
        hosts_up_file ssh,smb srv cli other
}

teardown_file() { hosts_down_file; }

setup() {
        local why
        why=$(poll_skip)
        [[ -z $why ]] || skip "$why"
        ferry_setup
}

# seen OUT NAME: the watcher's NUL records name NAME (a path ending in /NAME)
seen() { tr '\0' '\n' <"$1" | grep -qE "/$2\$"; }

# poll_case KIND: cli watches its KIND mount of srv's share
poll_case() {
        local kind=$1 mnt srv name start took
        local share=$FERRY_HOSTS/srv/share/$kind
        mkdir "$share"
        mnt=$("$HOSTS" mount "$FERRY_HOSTS" cli srv "$kind")/$kind
        srv=$("$HOSTS" ip "$FERRY_HOSTS" srv)
        "$HOSTS" exec "$FERRY_HOSTS" cli "$FERRY" watch --ready -0 --poll-interval 500ms "$mnt" \
                </dev/null >"$T/out" 2>"$T/out.err" 3>&- &
        FERRY_PID=$!
        BG_PIDS+=("$FERRY_PID")
        wait_for has_text "$T/out.err" "poll every 0.5s" 30 || { cat "$T/out.err"; return 1; }
        head -c 100000 /dev/urandom >"$T/data"

        # written on the server, by a program of srv
        name=on-server-$kind
        start=$(now_us)
        "$HOSTS" exec "$FERRY_HOSTS" srv cp "$T/data" "$share/$name"
        wait_for seen "$T/out" "$name" 30
        took=$(elapsed_ms "$start")
        echo "# $kind: written on the server, reported ready after ${took} ms" >&3

        # written by another client, over SMB
        name=by-other-$kind
        start=$(now_us)
        "$HOSTS" exec "$FERRY_HOSTS" other smbclient "//$srv/share" -U "root%$(cat "$FERRY_HOSTS/smbpass")" \
                -c "put $T/data $kind/$name" >"$T/smbclient.log" 2>&1 || { cat "$T/smbclient.log"; return 1; }
        wait_for seen "$T/out" "$name" 30
        took=$(elapsed_ms "$start")
        echo "# $kind: written by another client, reported ready after ${took} ms" >&3

        # and this machine's own write through the mount
        printf 'x' >"$mnt/own-$kind"
        wait_for seen "$T/out" "own-$kind" 30
        stop_ferry "$T/out"
        printf '%s\0' "$mnt/on-server-$kind" "$mnt/by-other-$kind" "$mnt/own-$kind" >"$T/want"
        assert_same_nul_set "$T/want" "$T/out"
        cmp "$T/data" "$mnt/on-server-$kind"
        cmp "$T/data" "$mnt/by-other-$kind"
        grep -q "poll every 0.5s and inotify (fuse" "$T/out.err"
}

@test "share poll: sshfs mount: files written on the server and by another client are seen, once" {
        poll_case sshfs
}

@test "share poll: smbnetfs mount: files written on the server and by another client are seen, once" {
        poll_case smbnetfs
}
