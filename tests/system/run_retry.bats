#!/usr/bin/env bats
# run_retry.bats: ferry retry puts failed files back into their folder (by rename, never
# replacing a file: a taken name comes back as STEM.N.EXT), keeps their notes in the failed
# folder's .requeued/, and the workers that share the folder handle them again, each once.
# It selects by path, --all, --reason GLOB or --since TIME; --dry-run moves nothing.

load helpers

# two workers of rule r on $T/in; the handler fails with 7 for bad* until $T/fixed exists,
# with 3 for broken*, and records each name it handled successfully in $T/handled.
start_workers() {
        mkdir -p "$T/in"
        cat >"$T/h.sh" <<EOF
#!/bin/sh
case "\$FERRY_NAME" in
bad*) [ -e "$T/fixed" ] || exit 7 ;;
broken*) exit 3 ;;
esac
printf '%s\n' "\$FERRY_NAME" >>"$T/handled"
EOF
        chmod +x "$T/h.sh"
        start_ferry "$T/a" run --name r --retries 0 "$T/in" -- "$T/h.sh" {}
        A=$FERRY_PID
        start_ferry "$T/b" run --name r --retries 0 "$T/in" -- "$T/h.sh" {}
        B=$FERRY_PID
        wait_run_started "$T/a"
        wait_run_started "$T/b"
}

stop_workers() {
        FERRY_PID=$A
        stop_ferry "$T/a"
        FERRY_PID=$B
        stop_ferry "$T/b"
}

@test "retry --reason: only the files that failed that way go back, and two workers handle each once" {
        start_workers
        for i in $(seq 1 10); do printf 'bad %s\n' "$i" >"$T/in/bad$i.csv"; done
        printf 'broken\n' >"$T/in/broken.csv"
        printf 'good\n' >"$T/in/good.csv"
        wait_files "$T/in/.ferry/failed" 22 30
        touch "$T/fixed"

        run --separate-stderr "$FERRY" retry --dir "$T/in" --name r --reason 'exit status 7' --dry-run
        assert_status 0
        [[ $(grep -c '^would requeue ' <<<"$output") == 10 ]]
        [[ $(find "$T/in/.ferry/failed" -maxdepth 1 -type f | wc -l) == 22 ]]

        run --separate-stderr "$FERRY" retry --dir "$T/in" --name r --reason 'exit status 7'
        assert_status 0
        [[ $(grep -c '^requeued ' <<<"$output") == 10 ]]
        [[ $output == *"requeued $T/in/.ferry/failed/bad3.csv -> $T/in/bad3.csv (exit status 7)"* ]]
        wait_lines "$T/handled" 11 30
        wait_files "$T/in/.ferry/done" 11 30
        stop_workers
        # each bad file once more, now in done with its content; broken stays failed
        sort "$T/handled" >"$T/got"
        { printf 'bad%s.csv\n' $(seq 1 10); echo good.csv; } | sort >"$T/want"
        assert_same_file "$T/want" "$T/got"
        [[ $(cat "$T/in/.ferry/done/bad3.csv") == "bad 3" ]]
        [[ $(find "$T/in/.ferry/failed" -maxdepth 1 -type f -printf '%f\n' | sort | tr '\n' ' ') == \
                "broken.csv broken.csv.ferry-error " ]]
        [[ $(find "$T/in/.ferry/failed/.requeued" -name 'bad*.csv.ferry-error.*' | wc -l) == 10 ]]
        grep -qx 'reason: exit status 7' "$T/in/.ferry/failed/.requeued/bad3.csv.ferry-error."*
        # the archive is not counted as failed files
        run --separate-stderr "$FERRY" status --dir "$T/in" --name r
        [[ $output == *"done 11, failed 1"* ]]
}

@test "retry: by path (in the failed folder or where it was), a taken name comes back numbered, --since, errors" {
        mkdir "$T/in"
        printf 'x\n' >"$T/in/a.csv"
        printf 'x\n' >"$T/in/b.csv"
        printf 'x\n' >"$T/in/c.csv"
        start_ferry "$T/ferry" run --retries 0 "$T/in" -- /bin/false
        wait_files "$T/in/.ferry/failed" 6 30
        stop_ferry "$T/ferry"

        # a.csv arrived again meanwhile: the failed one comes back as a.1.csv
        printf 'new\n' >"$T/in/a.csv"
        run --separate-stderr "$FERRY" retry --dir "$T/in" "$T/in/.ferry/failed/a.csv" "$T/in/b.csv"
        assert_status 0
        [[ $output == *"-> $T/in/a.1.csv (exit status 1)"* ]]
        [[ $output == *"-> $T/in/b.csv (exit status 1)"* ]]
        [[ $(cat "$T/in/a.csv") == new && -f $T/in/a.1.csv && -f $T/in/b.csv ]]
        [[ ! -e $T/in/.ferry/failed/a.csv && -e $T/in/.ferry/failed/c.csv ]]

        run --separate-stderr "$FERRY" retry --dir "$T/in" --since 2099-01-01
        assert_status 0
        [[ $output == "no failed file matches" ]]
        run --separate-stderr "$FERRY" retry --dir "$T/in" --since 1h
        assert_status 0
        [[ $output == *"-> $T/in/c.csv"* ]]

        run --separate-stderr "$FERRY" retry --dir "$T/in" "$T/in/zzz.csv"
        assert_status 1
        [[ $stderr == *"zzz.csv: not a failed file of any rule"* ]]
        run --separate-stderr "$FERRY" retry --dir "$T/in"
        assert_status 2
        run --separate-stderr "$FERRY" retry --dir "$T/in" --all "$T/in/b.csv"
        assert_status 2
        run --separate-stderr "$FERRY" retry --dir "$T/in" --since yesterday
        assert_status 2
        run --separate-stderr "$FERRY" status --dir "$T/in" --all
        assert_status 2
}
