#!/usr/bin/env bats
# put.bats: `ferry put` delivers files complete, by rename, with an optional marker holding
# size and SHA-256; the done-file policy hands out a file only when it matches its marker.

load helpers

@test "put: the file appears complete, by rename (moved_to), never as a partial create" {
        mkdir "$T/in"
        head -c 3000000 /dev/urandom >"$T/big.bin"
        start_ferry "$T/events" watch --events create,moved_to,close_write "$T/in"
        wait_watches "$FERRY_PID" 1 30
        "$FERRY" put "$T/big.bin" "$T/in"
        cmp "$T/big.bin" "$T/in/big.bin"
        wait_line "$T/events" "moved_to $T/in/big.bin" 30
        stop_ferry "$T/events"
        # The final name was never created or written in place; only the temporary name was.
        refute grep -aE "^(create|close_write) $T/in/big.bin\$" "$T/events"
        grep -aqE "^create $T/in/\.ferry-put\." "$T/events"
        # No temporary file is left.
        [[ $(ls -A "$T/in") == big.bin ]]
}

@test "put --marker: NAME.done holds size and SHA-256; several sources into a folder" {
        mkdir "$T/in"
        printf 'hello\n' >"$T/a.txt"
        printf 'a name with\nnewline' >"$T/b"$'\n'"c"
        "$FERRY" put --marker "$T/a.txt" "$T/b"$'\n'"c" "$T/in"
        cmp "$T/a.txt" "$T/in/a.txt"
        cmp "$T/b"$'\n'"c" "$T/in/b"$'\n'"c"
        printf 'ferry-marker 1\nsize 6\nsha256 %s\n' "$(sha256sum <"$T/a.txt" | cut -d' ' -f1)" >"$T/want"
        assert_same_file "$T/want" "$T/in/a.txt.done"
        "$FERRY" put --marker=.ok "$T/a.txt" "$T/in/renamed.txt"
        [[ -f $T/in/renamed.txt.ok ]]
}

@test "put: errors name the path; nothing is left behind" {
        mkdir "$T/in"
        run --separate-stderr "$FERRY" put "$T/missing" "$T/in"
        assert_status 1
        [[ $stderr == "ferry: cannot put $T/missing into $T/in/missing: No such file or directory" ]]
        printf x >"$T/a"
        run --separate-stderr "$FERRY" put "$T/a" "$T/a" "$T/not-a-folder"
        assert_status 2
        [[ -z $(ls -A "$T/in") ]]
}

@test "done-file: a file that does not match its marker is reported as an error, once, and never ready" {
        mkdir "$T/in"
        head -c 100000 /dev/urandom >"$T/data.bin"
        start_ferry "$T/out" watch --ready=done-file --json "$T/in"
        wait_watches "$FERRY_PID" 1 30
        # A writer that died half-way, and a marker written regardless.
        "$FERRY" put --marker "$T/data.bin" "$T/stage.bin"
        head -c 50000 "$T/data.bin" >"$T/in/.data.part" && mv "$T/in/.data.part" "$T/in/data.bin"
        cp "$T/stage.bin.done" "$T/in/data.bin.done"
        wait_for has_text "$T/out" '"event":"error"' 30
        # The marker closed again, unchanged (smbnetfs does that): no second error.
        : >>"$T/in/data.bin.done"
        touch "$T/in/data.bin.done"
        # Then the complete file arrives: ready, once.
        "$FERRY" put "$T/data.bin" "$T/in"
        wait_for has_text "$T/out" '"event":"ready"' 30
        stop_ferry "$T/out"
        [[ $(grep -c '"event":"error"' "$T/out") -eq 1 ]]
        [[ $(grep -c '"event":"ready"' "$T/out") -eq 1 ]]
        grep '"event":"ready"' "$T/out" | grep -q '"size":100000'
        grep -q 'does not match its done-marker' "$T/out.err"
}

@test "ferry run --ready done-file: the handler never sees a truncated file" {
        mkdir "$T/in"
        head -c 200000 /dev/urandom >"$T/good.bin"
        make_handler "$T/size.sh" 'stat -c %s "$1" >>"'"$T"'/sizes"'
        start_ferry "$T/run" run --ready done-file "$T/in" -- "$T/size.sh" {}
        wait_run_started "$T/run"
        "$FERRY" put --marker "$T/good.bin" "$T/stage.bin"
        head -c 1000 "$T/good.bin" >"$T/in/.x" && mv "$T/in/.x" "$T/in/x.bin"
        cp "$T/stage.bin.done" "$T/in/x.bin.done"
        wait_for has_text "$T/run.err" 'does not match its done-marker' 30
        "$FERRY" put --marker "$T/good.bin" "$T/in/y.bin"
        wait_lines "$T/sizes" 1 30
        stop_ferry "$T/run"
        [[ $(cat "$T/sizes") == 200000 ]]
        [[ -f $T/in/x.bin ]]   # the truncated one stays where it is
}

@test "done-file with --match: a marker renamed into place counts though no glob matches it" {
        mkdir "$T/in"
        printf 'a,b\n' >"$T/data.csv"
        make_handler "$T/h.sh" 'printf "%s\n" "$1" >>"'"$T"'/handled"'
        start_ferry "$T/run" run --ready done-file --match '*.csv' "$T/in" -- "$T/h.sh" {name}
        wait_run_started "$T/run"
        "$FERRY" put --marker "$T/data.csv" "$T/in"
        wait_lines "$T/handled" 1 30
        stop_ferry "$T/run"
        [[ $(cat "$T/handled") == data.csv ]]
        # ferry wait on one file, marker by rename too.
        mkdir "$T/in2"
        "$FERRY" wait --ready done-file --timeout 30s "$T/in2/y.csv" >"$T/waited" &
        waiter=$!
        wait_for has_watches "$waiter" 1 30
        "$FERRY" put --marker "$T/data.csv" "$T/in2/y.csv"
        wait "$waiter"
        [[ $(cat "$T/waited") == "$T/in2/y.csv" ]]
}
