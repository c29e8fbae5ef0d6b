#!/usr/bin/env bats
# Several machines, one folder: three hosts (network namespaces with their own hostname and
# machine id, made by scripts/hosts). Host s owns the folder and serves it with sshd; hosts w1
# and w2 mount it with sshfs. A `ferry run` worker on each of the three shares the 5,000
# files. w1's host is killed mid-run (every process in its namespace: ferry, its handlers, its
# sshfs): the claims it held stay in its work area until its lease ages on the file server's
# clock, then the others adopt and handle them.

load helpers

N=5000
LEASE=10

setup() {
        ferry_setup
        STATE=
}

teardown() {
        kill_background
        if [[ -n $STATE ]]; then
                "$HOSTS" down "$STATE" 2>>"$T/hosts.log" || true
        fi
        ferry_teardown
}

need_hosts() {
        local why
        why=$(hosts_missing sshfs ssh-keygen /usr/sbin/sshd)
        [[ -z $why ]] || skip "$why"
}

# worker HOST DIR OUT: `ferry run` as a process of HOST on DIR; its handler appends
# "HOST NAME NANOSECONDS" to $T/handled.
worker() {
        "$HOSTS" exec "$STATE" "$1" "$FERRY" run --name share --lease "${LEASE}s" --jobs 4 \
                --poll-interval 300ms --ready rename "$2" -- "$T/handler" >"$3" 2>"$3.err" </dev/null 3>&- 9>&- &
        BG_PIDS+=("$!")
        eval "PID_$1=$!"
}

handled_lines() { count_lines "$T/handled"; }
handled_by() { grep -c "^$1 " "$T/handled" 2>/dev/null || true; }
has_handled_by() { (($(handled_by "$1") + 0 >= $2)); }

# show_workers: the end of each worker's log, for a failure message.
show_workers() {
        local h
        for h in s w1 w2; do
                echo "--- $h:" >&2
                tail -5 "$T/$h.out.err" 2>/dev/null | cat -v >&2
        done
}
# server_done_with_w1: host s holds no connection from w1 that its sshd still serves.
server_done_with_w1() {
        local conns
        conns=$(ss -N "$(basename "$STATE")-s" -Htn state established state close-wait dst "$W1_IP") || return 2
        [[ -z $conns ]]
}
done_count() { count_files "$SHARE/.ferry/done"; }
all_done() { (($(done_count) >= N)) && [[ -z $(claims_left "$SHARE") ]]; }

@test "three hosts share one folder through sshfs: 5,000 files once each; a killed host's claims adopted after the lease" {
        need_hosts
        STATE=$("$HOSTS" up --serve ssh s w1 w2 2>"$T/hosts.log" | sed -n 's/^FERRY_HOSTS=//p') || true
        [[ -n $STATE ]] || {
                cat "$T/hosts.log" >&2
                false
        }
        SHARE=$STATE/s/share
        local m1 m2
        m1=$("$HOSTS" mount "$STATE" w1 s sshfs 2>>"$T/hosts.log")
        m2=$("$HOSTS" mount "$STATE" w2 s sshfs 2>>"$T/hosts.log")
        [[ $(stat -f -c %T "$m1") == fuseblk || $(stat -f -c %T "$m1") == fuse* ]]

        # The handler takes a little while, so that each worker always has claims in flight.
        make_handler "$T/handler" "printf '%s %s %s\\n' \"\$(hostname)\" \"\$FERRY_NAME\" \"\$(date +%s%N)\" >>'$T/handled'" \
                "sleep 0.02"

        # The files arrive complete (renamed into place), on the server's own disk.
        drop_numbered "$SHARE" f 1 "$N"

        worker s "$SHARE" "$T/s.out"
        worker w1 "$m1" "$T/w1.out"
        worker w2 "$m2" "$T/w2.out"

        # Mid-run: w1 has handled some and holds claims. Its host dies. (50: s, local and woken by
        # inotify, is many times faster than the sshfs workers on a loaded machine, and must not
        # have finished all the files before w1 got going.)
        wait_for has_handled_by w1 50 120 || {
                show_workers
                false
        }
        W1_IP=$("$HOSTS" ip "$STATE" w1)
        if server_done_with_w1; then # the probe must see w1's sftp session while it lives
                echo "no connection from w1 ($W1_IP) seen on s" >&2
                false
        fi
        "$HOSTS" kill "$STATE" w1 2>>"$T/hosts.log"
        wait_exit "$PID_w1" 10
        # The file server may still apply what w1 sent before it died (a claim's rename, a
        # move to done): its sftp session for w1 reads the requests already received before
        # it sees the end of the connection. w1's claims are what is left once it is gone.
        wait_for server_done_with_w1 30
        local -a held
        mapfile -t held < <(find "$SHARE/.ferry/work" -path '*/share@w1.*/*' -type f ! -name '.*' -printf '%f\n')
        # w1's last heartbeat, as the file server stamped it: its lease runs out a lease later
        # (read now: no other host may take its claims before then, and that is seconds away).
        local last_beat
        last_beat=$(python3 -c 'import glob, os, sys
print(max(os.stat(p).st_mtime_ns for p in glob.glob(sys.argv[1] + "/.ferry/work/share@w1.*/.lease")))' "$SHARE")
        ((${#held[@]} > 0)) || {
                echo "w1 held no claims when it was killed" >&2
                false
        }

        if ! wait_for all_done 240; then
                echo "done: $(done_count) of $N; claims left:" >&2
                claims_left "$SHARE" | head >&2
                show_workers
                false
        fi

        # Every file reached the done folder exactly once (a second arrival would be NAME.1).
        files_nul "$SHARE/.ferry/done" "$T/done"
        numbered_names f 1 "$N" >"$T/want"
        assert_same_nul_set "$T/want" "$T/done"
        assert_queue_empty "$SHARE"
        [[ ! -d $SHARE/.ferry/failed ]] || [[ $(count_files "$SHARE/.ferry/failed") -eq 0 ]]

        # All three took part; every name was handled; a name handled twice is one w1 was
        # running when it died (at-least-once across a crash), and only those.
        (($(handled_by s) > 0)) && (($(handled_by w1) > 0)) && (($(handled_by w2) > 0))
        cut -d' ' -f2 "$T/handled" | sort -u >"$T/names"
        [[ $(wc -l <"$T/names") -eq $N ]]
        local name twice=0
        while read -r name; do
                printf '%s\n' "${held[@]}" | grep -qxF -- "$name" || {
                        echo "$name was handled twice but w1 did not hold it:" >&2
                        grep " $name " "$T/handled" >&2
                        grep -h -e "$name" -e 'dead' -e 'recovered' "$T"/*.out.err | grep -v ': done in' >&2
                        false
                }
                twice=$((twice + 1))
        done < <(cut -d' ' -f2 "$T/handled" | sort | uniq -d)
        ((twice <= 4)) # w1 ran at most --jobs handlers at once

        # The claims w1 held were handled by the others, and not before the lease aged.
        local adopted
        adopted=$(cat "$T/s.out.err" "$T/w2.out.err" | grep -c 'recovered from a worker that died' || true)
        ((adopted == ${#held[@]})) || {
                echo "w1 held ${#held[@]} claims; the others recovered $adopted" >&2
                false
        }
        for name in "${held[@]}"; do
                [[ -e $SHARE/.ferry/done/$name ]]
        done
        # No other host may start a claim of w1's before w1's lease ran out: a lease after its
        # last heartbeat by the server's clock (the same clock as the handlers' here; 100 ms
        # for the stamps' own timing). A heartbeat late under load makes that earlier than
        # the kill plus two thirds of the lease, which is not an error.
        local host at earliest=$((last_beat + LEASE * 1000000000 - 100000000))
        for name in "${held[@]}"; do
                while read -r host _ at; do
                        [[ $host == w1 ]] && continue
                        ((at >= earliest)) || {
                                echo "$host started $name $(((earliest - at) / 1000000)) ms before w1's lease ran out" >&2
                                false
                        }
                done < <(grep " $name " "$T/handled")
        done

        kill -TERM "$PID_s" "$PID_w2"
        wait_exit "$PID_s" 30
        ((EXIT_RC == 0))
        wait_exit "$PID_w2" 30
        ((EXIT_RC == 0))
}
