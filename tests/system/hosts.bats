#!/usr/bin/env bats
# hosts.bats: scripts/hosts itself: hosts come up with every server, exec runs as the host
# (hostname, machine id), a file written through each server and client lands in the share,
# kill kills the host, and down leaves no namespace, mount or process behind.

load helpers

# hosts_skip: the reason this machine cannot host them, or nothing.
hosts_skip() {
        hosts_missing sshfs smbnetfs smbclient nfs-cp ssh-keygen smbpasswd /usr/sbin/sshd /usr/sbin/smbd \
                /usr/bin/ganesha.nfsd /usr/sbin/rpcbind
}

setup_file() {
        [[ -z $(hosts_skip) ]] || return 0
        hosts_up_file ssh,smb,nfs a b
}

teardown_file() { hosts_down_file; }

setup() {
        local why
        why=$(hosts_skip)
        [[ -z $why ]] || skip "$why"
        ferry_setup
}

# live_pids NS: the processes in network namespace NS (none once it is gone)
live_pids() { [[ ! -e /run/netns/$1 ]] || ip netns pids "$1"; }

@test "hosts: exec runs as the host: its hostname, machine id and boot id, argv and exit status as they are" {
        run "$HOSTS" exec "$FERRY_HOSTS" a hostname
        assert_status 0
        [[ $output == a ]]
        run "$HOSTS" exec "$FERRY_HOSTS" b cat /etc/machine-id
        [[ $output == "$(cat "$FERRY_HOSTS/b/machine-id")" && $output =~ ^[0-9a-f]{32}$ ]]
        [[ $(cat "$FERRY_HOSTS/a/machine-id") != "$(cat "$FERRY_HOSTS/b/machine-id")" ]]
        [[ $(cat "$FERRY_HOSTS/b/machine-id") != "$(cat /etc/machine-id)" ]]
        a_boot=$("$HOSTS" exec "$FERRY_HOSTS" a cat /proc/sys/kernel/random/boot_id)
        b_boot=$("$HOSTS" exec "$FERRY_HOSTS" b cat /proc/sys/kernel/random/boot_id)
        [[ $a_boot != "$b_boot" ]]
        # its own address, and the other host over the switch
        run "$HOSTS" exec "$FERRY_HOSTS" a ip -brief -4 addr show eth0
        [[ $output == *"$("$HOSTS" ip "$FERRY_HOSTS" a)/24"* ]]
        # shellcheck disable=SC2016 # expanded by that bash
        run "$HOSTS" exec "$FERRY_HOSTS" a bash -c 'exec 3<>"/dev/tcp/$0/22"' "$("$HOSTS" ip "$FERRY_HOSTS" b)"
        assert_status 0
        # argv untouched (no shell), stdin passed, exit status passed back
        # shellcheck disable=SC2016 # literal on purpose
        run "$HOSTS" exec "$FERRY_HOSTS" a printf '[%s]' 'two words' '$HOME' '*' $'new\nline'
        [[ $output == "[two words][\$HOME][*][new"$'\n'"line]" ]]
        [[ $(printf 'in\n' | "$HOSTS" exec "$FERRY_HOSTS" b cat) == in ]]
        run "$HOSTS" exec "$FERRY_HOSTS" a sh -c 'exit 7'
        assert_status 7
        # this machine's mounts stay visible
        [[ $("$HOSTS" exec "$FERRY_HOSTS" a cat "$BATS_TEST_FILENAME" | head -1) == '#!/usr/bin/env bats' ]]
}

@test "hosts: a file written through each server and client lands in the share, byte for byte" {
        a=$("$HOSTS" ip "$FERRY_HOSTS" a)
        b=$("$HOSTS" ip "$FERRY_HOSTS" b)
        share=$FERRY_HOSTS/b/share
        head -c 3000 /dev/urandom >"$T/data"
        # a process of a started before the mount sees it appear
        # shellcheck disable=SC2016 # expanded by that bash
        bg "$HOSTS" exec "$FERRY_HOSTS" a bash -c \
                'for _ in $(seq 300); do [[ -e $0 ]] && exec cp "$0" "$1"; sleep 0.1; done; exit 1' \
                "$FERRY_HOSTS/a/mnt/b-sshfs/via-sshfs" "$T/seen-from-a"
        early=$BG_PID
        run "$HOSTS" mount "$FERRY_HOSTS" a b sshfs
        assert_status 0
        [[ $output == "$FERRY_HOSTS/a/mnt/b-sshfs" ]]
        cp "$T/data" "$output/via-sshfs"
        smb=$("$HOSTS" mount "$FERRY_HOSTS" a b smbnetfs)
        [[ $smb == "$FERRY_HOSTS/a/mnt/b-smbnetfs" ]]
        cp "$T/data" "$smb/via-smbnetfs"
        # userspace clients, run as host a
        "$HOSTS" exec "$FERRY_HOSTS" a smbclient "//$b/share" -U "root%$(cat "$FERRY_HOSTS/smbpass")" \
                -c "put $T/data via-smbclient" >"$T/smbclient.log" 2>&1 || { cat "$T/smbclient.log"; false; }
        "$HOSTS" exec "$FERRY_HOSTS" a nfs-cp "$T/data" "nfs://$b$share/via-nfs3?version=3"
        "$HOSTS" exec "$FERRY_HOSTS" a nfs-cp "$T/data" "nfs://$b/share/via-nfs4?version=4"
        "$HOSTS" exec "$FERRY_HOSTS" b ssh -F "$FERRY_HOSTS/b/ssh/ssh_config" "$a" \
                cat "$FERRY_HOSTS/b/share/via-sshfs" >"$T/via-ssh"
        for f in via-sshfs via-smbnetfs via-smbclient via-nfs3 via-nfs4; do
                cmp "$T/data" "$share/$f"
        done
        cmp "$T/data" "$T/via-ssh"
        wait_exit "$early" 30
        ((EXIT_RC == 0))
        cmp "$T/data" "$T/seen-from-a"
        # and a's share through b's mount of it
        mnt=$("$HOSTS" mount "$FERRY_HOSTS" b a sshfs)
        printf 'back\n' >"$mnt/back"
        [[ $(cat "$FERRY_HOSTS/a/share/back") == back ]]
}

@test "hosts: kill kills everything the host runs, its FUSE clients included; the others live on" {
        b=$("$HOSTS" ip "$FERRY_HOSTS" b)
        ns_a=$(awk '$1 == "a" { print $2 }' "$FERRY_HOSTS/hosts")
        mountpoint -q "$FERRY_HOSTS/a/mnt/b-sshfs" || "$HOSTS" mount "$FERRY_HOSTS" a b sshfs
        bg "$HOSTS" exec "$FERRY_HOSTS" a sleep 1000
        sleeper=$BG_PID
        wait_for has_text "/proc/$sleeper/cmdline" sleep 10
        [[ -n $(live_pids "$ns_a") ]]
        mapfile -t b_servers < <(awk '$2 == "b" && $1 !~ /-/ { print $3 }' "$FERRY_HOSTS/pids")
        ((${#b_servers[@]} == 3))
        run "$HOSTS" kill "$FERRY_HOSTS" a
        assert_status 0
        [[ -z $(live_pids "$ns_a") ]]
        wait_for proc_gone "$sleeper" 5
        # its sshfs died with it: the mount no longer answers
        run ! ls "$FERRY_HOSTS/a/mnt/b-sshfs"
        for p in "${b_servers[@]}"; do
                proc_alive "$p"
        done
        # shellcheck disable=SC2016 # expanded by that bash
        "$HOSTS" exec "$FERRY_HOSTS" b bash -c 'exec 3<>"/dev/tcp/$0/445"' "$b"
}

@test "hosts: down leaves no namespace, mount or process; twice is harmless; bad arguments build nothing" {
        out=$("$HOSTS" up --serve ssh,smb,nfs c d 2>"$T/up.log")
        state=${out#FERRY_HOSTS=}
        [[ -f $state/.hosts ]]
        mapfile -t namespaces <"$state/netns"
        [[ ${#namespaces[@]} -eq 3 ]]
        "$HOSTS" mount "$state" c d sshfs
        "$HOSTS" mount "$state" c d smbnetfs
        bg "$HOSTS" exec "$state" d sleep 1000
        sleeper=$BG_PID
        wait_for has_text "/proc/$sleeper/cmdline" sleep 10
        pids=()
        for n in "${namespaces[@]}"; do
                mapfile -t -O "${#pids[@]}" pids < <(live_pids "$n")
        done
        ((${#pids[@]} >= 8))
        grep -qF " $state/" /proc/self/mountinfo
        run "$HOSTS" down "$state"
        assert_status 0
        [[ ! -e $state ]]
        for n in "${namespaces[@]}"; do
                [[ ! -e /run/netns/$n ]]
        done
        run ! grep -qF " $state/" /proc/self/mountinfo
        for p in "${pids[@]}"; do
                wait_for proc_gone "$p" 5
        done
        run "$HOSTS" down "$state"
        assert_status 0
        ls /run/netns >"$T/netns.before"
        run "$HOSTS" up --serve ssh,bogus e
        assert_status 1
        [[ $output == *"unknown server 'bogus'"* ]]
        run "$HOSTS" up a a
        assert_status 1
        ls /run/netns >"$T/netns.after"
        cmp "$T/netns.before" "$T/netns.after"
}
