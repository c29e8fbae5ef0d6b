#!/usr/bin/env bats
# retry_hosts.bats: ferry retry on one host puts failed files back into a folder that a worker on
# another host drains. Host s owns the folder and runs the worker; host w1 mounts it with sshfs
# and, once the cause of one kind of failure is fixed, requeues those failures by their reason.

load helpers

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

failed_files() { find "$SHARE/.ferry/failed" -maxdepth 1 -type f ! -name '*.ferry-error' -printf '%f\n' 2>/dev/null | sort; }
has_failed() { (($(failed_files | wc -l) >= $1)); }
done_count() { count_files "$SHARE/.ferry/done"; }
has_done() { (($(done_count) >= $1)); }

@test "retry: failures requeued by reason from another host (over sshfs) are handled by the worker on the file server; the others stay failed" {
        local why
        why=$(hosts_missing sshfs ssh-keygen /usr/sbin/sshd)
        [[ -z $why ]] || skip "$why"
        STATE=$("$HOSTS" up --serve ssh s w1 2>"$T/hosts.log" | sed -n 's/^FERRY_HOSTS=//p') || true
        [[ -n $STATE ]] || {
                cat "$T/hosts.log" >&2
                false
        }
        SHARE=$STATE/s/share
        local m1
        m1=$("$HOSTS" mount "$STATE" w1 s sshfs 2>>"$T/hosts.log")
        # exit 7 until the cause is fixed ($T/fixed), exit 3 always, else success.
        make_handler "$T/handler" 'printf "%s %s\n" "$(hostname)" "$FERRY_NAME" >>"$2"' \
                'case $FERRY_NAME in bad7-*) [ -e "$3" ] || exit 7 ;; bad3-*) exit 3 ;; esac'
        local n
        for n in ok-1 ok-2 ok-3 bad7-1 bad7-2 bad7-3 bad3-1 bad3-2; do
                printf '%s\n' "$n" >"$SHARE/$n"
        done
        "$HOSTS" exec "$STATE" s "$FERRY" run --name share --retries 0 "$SHARE" -- "$T/handler" {} "$T/handled" "$T/fixed" \
                >"$T/s.out" 2>"$T/s.out.err" </dev/null 3>&- 9>&- &
        BG_PIDS+=("$!")
        wait_for has_failed 5 60
        wait_for has_done 3 60
        touch "$T/fixed"

        run "$HOSTS" exec "$STATE" w1 "$FERRY" retry --dir "$m1" --name share --reason 'exit status 7' --dry-run
        ((status == 0)) || {
                echo "$output" >&2
                false
        }
        [[ $(grep -c '^would requeue ' <<<"$output") -eq 3 ]]
        [[ $(failed_files | wc -l) -eq 5 ]]

        run "$HOSTS" exec "$STATE" w1 "$FERRY" retry --dir "$m1" --name share --reason 'exit status 7'
        ((status == 0)) || {
                echo "$output" >&2
                false
        }
        [[ $(grep -c "^requeued $m1/.ferry/failed/bad7-. -> $m1/bad7-. (exit status 7)\$" <<<"$output") -eq 3 ]]
        wait_for has_done 6 60

        printf 'bad3-1\nbad3-2\n' >"$T/want.failed"
        diff "$T/want.failed" <(failed_files)
        [[ $(find "$SHARE/.ferry/failed/.requeued" -type f -name 'bad7-*' | wc -l) -eq 3 ]]
        find "$SHARE/.ferry/done" -type f -printf '%f\n' | sort >"$T/done"
        printf '%s\n' bad7-1 bad7-2 bad7-3 ok-1 ok-2 ok-3 >"$T/want.done"
        diff "$T/want.done" "$T/done"
        # each bad7 handled twice on s (failed, then done), each other file once
        for n in ok-1 ok-2 ok-3 bad3-1 bad3-2; do
                [[ $(grep -c "^s $n\$" "$T/handled") -eq 1 ]]
        done
        for n in bad7-1 bad7-2 bad7-3; do
                [[ $(grep -c "^s $n\$" "$T/handled") -eq 2 ]]
        done
        assert_queue_empty "$SHARE"
}
