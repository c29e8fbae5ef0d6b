#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted scripts and names are meant literally
# wait.bats: `ferry wait` returns when the file is complete, not when a writer merely paused
# or some other writer closed; it times out with 3, and files already complete count at once.

load helpers

CHUNK=$(printf '%01000d' 0) # 1000 bytes

# start_waiter NAME STAT_FILE ARG...: runs `ferry wait ARG...` in the background. The moment it
# returns, the size of STAT_FILE ("missing" if absent) goes to $T/NAME.seen, then its exit
# status to $T/NAME.rc. stdout/stderr go to $T/NAME.out/.err, ferry's pid to $T/NAME.pid.
start_waiter() {
        local name=$1 stat_file=$2
        shift 2
        bg bash -c '
                T=$1 name=$2 stat_file=$3 ferry=$4
                shift 4
                "$ferry" wait "$@" >"$T/$name.out" 2>"$T/$name.err" &
                echo $! >"$T/$name.pid"
                rc=0
                wait $! || rc=$?
                stat -c %s -- "$stat_file" >"$T/$name.seen" 2>/dev/null || echo missing >"$T/$name.seen"
                echo "$rc" >"$T/$name.rc"
        ' waiter "$T" "$name" "$stat_file" "$FERRY" "$@"
        wait_for file_exists "$T/$name.pid" 10
}

# waiter_pid NAME: the pid of that waiter's ferry.
waiter_pid() { cat "$T/$1.pid"; }

# assert_waiter NAME RC SEEN: the waiter exited RC and saw STAT_FILE at size SEEN.
assert_waiter() {
        local rc seen
        rc=$(cat "$T/$1.rc")
        seen=$(cat "$T/$1.seen")
        if [[ $rc != "$2" || $seen != "$3" ]]; then
                echo "ferry wait ($1) exited $rc with the file at size $seen; expected exit $2 at size $3" >&2
                echo "--- stderr:" >&2
                cat -v "$T/$1.err" >&2
                return 1
        fi
}

@test "wait: a writer holding the file open across pauses: returns only after the final close" {
        F=$T/slow.dat
        # 6 chunks with 0.3 s pauses, one open file description throughout.
        bg bash -c 'exec 5>"$1"; for i in 1 2 3 4 5; do printf %s "$2" >&5; sleep 0.3; done
                printf %s "$2" >&5; exec 5>&-' writer "$F" "$CHUNK"
        writer=$BG_PID
        # Start waiting while the file exists, is held open and pauses longer than the guard.
        wait_for file_size_at_least "$F" 1000 10
        start_waiter w "$F" "$F"

        wait_for file_exists "$T/w.rc" 60
        assert_waiter w 0 6000
        printf '%s\n' "$F" >"$T/want"
        assert_same_file "$T/want" "$T/w.out"
        wait_exit "$writer" 10
}

@test "wait: started before the file exists, slow writer holding it open: only after the final close" {
        F=$T/slow.dat
        start_waiter w "$F" "$F"
        wait_watches "$(waiter_pid w)" 1 10

        bg bash -c 'exec 5>"$1"; for i in 1 2 3 4 5; do printf %s "$2" >&5; sleep 0.3; done
                printf %s "$2" >&5; exec 5>&-' writer "$F" "$CHUNK"

        wait_for file_exists "$T/w.rc" 60
        assert_waiter w 0 6000
}

@test "wait: a second writer opens and closes first while the main writer still holds it" {
        F=$T/shared.dat
        start_waiter w "$F" "$F"
        wait_watches "$(waiter_pid w)" 1 10

        # The main writer holds fd 5 throughout. Meanwhile two other processes open the file
        # for writing and close it (one appends a chunk, one writes nothing): each close is an
        # IN_CLOSE_WRITE while the main writer is not done.
        bg bash -c 'exec 5>>"$1"
                printf %s "$2" >&5; sleep 0.3
                bash -c "printf %s \"\$2\" >>\"\$1\"" other "$1" "$2"; sleep 0.3
                bash -c "exec 4>>\"\$1\"; exec 4>&-" other "$1"; sleep 0.3
                printf %s "$2" >&5; sleep 0.3
                printf %s "$2" >&5; exec 5>&-' writer "$F" "$CHUNK"

        wait_for file_exists "$T/w.rc" 60
        assert_waiter w 0 4000
}

@test "wait: a writer that reopens between chunks, --ready settle=1s: only after the last chunk" {
        F=$T/chunks.dat
        start_waiter w "$F" --ready settle=1s "$F"
        wait_watches "$(waiter_pid w)" 1 10

        bg bash -c 'for i in 1 2 3 4 5 6 7 8 9 10; do printf %s "$2" >>"$1"; sleep 0.3; done' \
                writer "$F" "$CHUNK"

        wait_for file_exists "$T/w.rc" 60
        assert_waiter w 0 10000
}

@test "wait: --ready done-file: only once F.done exists, and the marker is not printed" {
        F=$T/batch.dat
        start_waiter w "$F.done" --ready done-file "$F"
        wait_watches "$(waiter_pid w)" 1 10

        bg bash -c 'printf %s "$2" >"$1"; sleep 0.5; printf ok >"$1.done"' writer "$F" "$CHUNK"

        wait_for file_exists "$T/w.rc" 60
        assert_waiter w 0 2
        printf '%s\n' "$F" >"$T/want"
        assert_same_file "$T/want" "$T/w.out"
}

@test "wait: --timeout 0.5s on a file never written exits 3, prints nothing, within bounds" {
        start=$(now_us)
        run --separate-stderr timeout 30 "$FERRY" wait --timeout 0.5s "$T/never"
        took=$(elapsed_ms "$start")
        assert_status 3
        [[ -z $output ]]
        ((took >= 450)) || { echo "returned after ${took} ms, before the 0.5 s timeout" >&2; return 1; }
        ((took < 10000 * SLOW)) || { echo "returned after ${took} ms" >&2; return 1; }
}

@test "wait: DIR --match --timeout with no matching file exits 3" {
        mkdir "$T/in"
        printf x >"$T/in/a.txt"
        run --separate-stderr timeout 30 "$FERRY" wait --timeout 0.5s "$T/in" --match '*.csv'
        assert_status 3
        [[ -z $output ]]
}

@test "wait: a file already complete returns at once with 0 and prints its path (also -0, -q)" {
        F=$T/done.csv
        printf 'a,b\n' >"$F"
        start=$(now_us)
        run --separate-stderr timeout 30 "$FERRY" wait "$F"
        took=$(elapsed_ms "$start")
        assert_status 0
        [[ $output == "$F" ]]
        ((took < 5000 * SLOW)) || { echo "took ${took} ms for a complete file" >&2; return 1; }

        rc=0
        timeout 30 "$FERRY" wait -0 "$F" >"$T/got" || rc=$?
        ((rc == 0))
        printf '%s\0' "$F" >"$T/want"
        assert_same_file "$T/want" "$T/got"

        run --separate-stderr timeout 30 "$FERRY" wait -q "$F"
        assert_status 0
        [[ -z $output ]]
}

@test "wait: DIR --match '*.csv' --count 3 returns after the 3rd csv, ignoring other and unfinished names" {
        D=$T/in
        mkdir "$D"
        start_waiter w "$D/z.csv" "$D" --match '*.csv' --count 3
        wait_watches "$(waiter_pid w)" 1 10

        # held.csv stays open for writing until the waiter has returned: it matches but is
        # never complete. Other names and temporary names do not count.
        bg bash -c 'D=$1 T=$2
                exec 5>"$D/held.csv"; printf partial >&5
                printf x >"$D/a.txt"
                printf x >"$D/x.csv"
                printf x >"$D/notes.csv.part"
                printf x >"$D/.hidden.csv"
                printf x >"$D/y.csv"
                printf x >"$D/b.log"
                mkdir "$D/dir.csv"
                sleep 0.5
                printf zz >"$D/z.csv"
                while [ ! -e "$T/w.rc" ]; do sleep 0.05; done
                exec 5>&-' writer "$D" "$T"

        wait_for file_exists "$T/w.rc" 60
        assert_waiter w 0 2
        printf '%s\n' "$D/x.csv" "$D/y.csv" "$D/z.csv" >"$T/want"
        sort "$T/w.out" >"$T/got"
        assert_same_file "$T/want" "$T/got"
}

@test "wait: -r DIR --match finds a file written into a new subdirectory" {
        D=$T/in
        mkdir "$D"
        start_waiter w "$D/new/deeper/r.csv" -r "$D" --match '*.csv'
        wait_watches "$(waiter_pid w)" 1 10
        mkdir -p "$D/new/deeper"
        printf 'abc' >"$D/new/deeper/r.csv"

        wait_for file_exists "$T/w.rc" 30
        assert_waiter w 0 3
        printf '%s\n' "$D/new/deeper/r.csv" >"$T/want"
        assert_same_file "$T/want" "$T/w.out"
}

@test "wait: a file in a missing folder exits 1 with a message naming the path" {
        run --separate-stderr timeout 30 "$FERRY" wait --timeout 5s "$T/nodir/f"
        assert_status 1
        [[ $stderr == *"$T/nodir"* ]] || { echo "stderr does not name the path: $stderr" >&2; return 1; }
}

@test "wait: the folder vanishing during the wait exits 1" {
        D=$T/in
        mkdir "$D"
        start_waiter w "$D/f" "$D/f"
        wait_watches "$(waiter_pid w)" 1 10
        rm -rf -- "$D"
        wait_for file_exists "$T/w.rc" 30
        assert_waiter w 1 missing
}
