#!/usr/bin/env bats
# share_nfs_shutdown.bats: nfs-ganesha keeps the files its clients wrote open (NFSv3: never
# closed after the writes; NFSv4: its write descriptor outlives the client's CLOSE) and closes
# them all when it stops. With `ferry run --keep` the files stay in the watched folder, so
# those late closes reach ferry: under auto each file is handed out once, complete, before the
# server stops, and its late close is not a new version; under close each file waits for
# that late close, and is then handed out once, complete.

load helpers

TOOLS_SRC=$BATS_TEST_DIRNAME/../tools

nfs_skip() {
        local c
        [[ $EUID -eq 0 ]] || { echo "needs root (network namespaces)"; return; }
        for c in ip nsenter unshare cc pkg-config /usr/bin/ganesha.nfsd /usr/sbin/rpcbind; do
                command -v "$c" >/dev/null || { echo "$c is missing (scripts/install-deps test)"; return; }
        done
        pkg-config --exists libnfs || { echo "libnfs-dev is missing"; return; }
        ip netns list >/dev/null 2>&1 || echo "network namespaces do not work here"
}

setup() {
        local why out flags
        why=$(nfs_skip)
        [[ -z $why ]] || skip "$why"
        ferry_setup
        RUN_PIDS=()
        read -r -a flags <<<"$(pkg-config --cflags --libs libnfs)"
        cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -o "$T/nfs-write" "$TOOLS_SRC/nfs-write.c" "${flags[@]}"
        out=$("$HOSTS" up --serve nfs srv cli 2>"$T/up.log") || { cat "$T/up.log" >&2; return 1; }
        STATE=${out#FERRY_HOSTS=}
}

teardown() {
        local p
        for p in "${RUN_PIDS[@]}"; do
                kill -TERM "$p" 2>/dev/null || true
        done
        [[ -z ${STATE:-} ]] || "$HOSTS" down "$STATE"
        ferry_teardown
}

# handled_count FOLDER: handler runs recorded for FOLDER
handled_count() { grep -c "^$1 " "$T/handled" 2>/dev/null || true; }
has_handled() { (($(handled_count "$1") >= $2)); }

@test "share nfs shutdown: ganesha's late closes: auto hands each file out once before, close once at them" {
        local share=$STATE/srv/share srv f v name p ganesha
        srv=$("$HOSTS" ip "$STATE" srv)
        make_handler "$T/handler" \
                "printf '%s %s %s %s\\n' \"\$1\" \"\$2\" \"\$(stat -c %s \"\$3\")\" \"\$(sha256sum <\"\$3\" | cut -c1-64)\" >>$T/handled"
        for f in auto close; do
                mkdir "$share/$f"
                "$HOSTS" exec "$STATE" srv "$FERRY" run --keep --ready "$f" --name "$f" "$share/$f" \
                        -- "$T/handler" "$f" '{name}' '{}' </dev/null >"$T/run-$f.out" 2>"$T/run-$f.err" 3>&- &
                RUN_PIDS+=("$!")
        done
        for f in auto close; do
                wait_run_started "$T/run-$f"
        done
        : >"$T/want"
        for v in 3 4; do
                for f in auto close; do
                        name=nfs$v-$f
                        head -c 200000 /dev/urandom >"$T/$name"
                        printf '%s %s %s %s\n' "$f" "$name" 200000 "$(sha256sum <"$T/$name" | cut -c1-64)" >>"$T/want"
                        if [[ $v == 3 ]]; then
                                "$HOSTS" exec "$STATE" cli "$T/nfs-write" -p 200 3 "$srv" "$share" "$T/$name" "/$f/$name"
                        else
                                "$HOSTS" exec "$STATE" cli "$T/nfs-write" -p 200 -w 2048 4 "$srv" /share "$T/$name" "/$f/$name"
                        fi
                done
        done
        # auto: both, after its quiet time, while ganesha still holds them
        wait_for has_handled auto 2 60
        [[ $(handled_count close) == 0 ]]
        # ganesha stops and closes what it held
        ganesha=$(awk '$1 == "ganesha" && $2 == "srv" { print $3 }' "$STATE/pids")
        [[ -n $ganesha ]]
        kill -TERM "$ganesha"
        wait_for proc_gone "$ganesha" 60
        wait_for has_handled close 2 30
        # a late close of an unchanged file is not a new version: give ferry time to be wrong
        wait_for handled_quiet 3 30
        for p in "${RUN_PIDS[@]}"; do
                kill -TERM "$p"
                wait_exit "$p" 30
        done
        RUN_PIDS=()
        sort "$T/want" >"$T/want.sorted"
        sort "$T/handled" >"$T/handled.sorted"
        diff "$T/want.sorted" "$T/handled.sorted"
}

# handled_quiet S: $T/handled did not change for S seconds
handled_quiet() { file_quiet "$T/handled" "$1"; }
