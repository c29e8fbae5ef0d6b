#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_keep.bats: with --keep files stay where they are and DIR/.ferry/state.db records each
# handled version: a restart neither loses nor repeats work, a file written again is handled
# again, and only one ferry run may keep the files of a folder.

load helpers

# $1: the log. Records the name; fails for names that start with "bad".
keep_handler() {
        make_handler "$T/h.sh" \
                'printf "%s\0" "$FERRY_NAME" >>"$1"' \
                'case "$FERRY_NAME" in bad*) echo "rejected" >&2; exit 1;; esac'
}

# handled_times LOG NAME: how many times NAME is in LOG.
handled_times() { { grep -zxcF -- "$2" "$1" 2>/dev/null || true; } | head -1; }
handled_at_least() { (($(handled_times "$1" "$2") >= $3)); }

@test "run --keep: files stay in place, each handled once; a restart repeats nothing; a rewrite is handled again" {
        D=$T/in
        mkdir "$D"
        keep_handler
        make_numbered "$D" f 1 200
        printf 'no\n' >"$D/bad.txt"
        numbered_names f 1 200 >"$T/want"
        printf '%s\0' bad.txt >>"$T/want"
        start_ferry "$T/ferry" run --keep -j 2 --retries 0 "$D" -- "$T/h.sh" "$T/handled" {}
        wait_nul_records "$T/handled" 201 60
        wait_for file_exists "$D/.ferry/failed/bad.txt.ferry-error" 30
        stop_ferry "$T/ferry"

        assert_same_nul_set "$T/want" "$T/handled"
        # Everything is where it was: nothing claimed, done or moved to failed (only the note).
        find "$D" -path "$D/.ferry" -prune -o -type f -printf '%P\0' >"$T/present"
        { numbered_names f 1 200; printf '%s\0' bad.txt; } >"$T/want.present"
        assert_same_nul_set "$T/want.present" "$T/present"
        [[ $(count_files "$D/.ferry/done") -eq 0 ]]
        [[ ! -e $D/.ferry/failed/bad.txt ]] || { echo "--keep moved the failed file" >&2; return 1; }
        has_line "$D/.ferry/failed/bad.txt.ferry-error" "path: $D/bad.txt"
        [[ -f $D/.ferry/state.db ]]

        # A restart, one job at a time: a file written after it started is handled; had it
        # handled the recorded files again, they would have come first.
        start_ferry "$T/ferry2" run --keep -j 1 --retries 0 "$D" -- "$T/h.sh" "$T/handled" {}
        wait_run_started "$T/ferry2"
        printf 'new\n' >"$D/marker.txt"
        wait_for handled_at_least "$T/handled" marker.txt 1 30
        # A recorded file written again is a new version: handled again. So is the failed one.
        printf 'more\n' >>"$D/f-00007"
        printf 'fixed\n' >"$D/bad.txt"
        wait_for handled_at_least "$T/handled" f-00007 2 30
        wait_for handled_at_least "$T/handled" bad.txt 2 30
        stop_ferry "$T/ferry2"

        { cat "$T/want"; printf '%s\0' marker.txt f-00007 bad.txt; } >"$T/want.all"
        assert_same_nul_set "$T/want.all" "$T/handled"
        [[ -f $D/f-00007 && -f $D/marker.txt ]]
}

@test "run --keep: a second ferry run keeping the same folder fails to start, exit 1" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/ferry" run --keep "$D" -- true {}
        wait_run_started "$T/ferry"
        run --separate-stderr timeout 10 "$FERRY" run --keep "$D" -- true {}
        assert_status 1
        [[ $stderr == *"$D"* ]] || { echo "the message does not name the folder: $stderr" >&2; return 1; }
        stop_ferry "$T/ferry"
}

@test "run --keep and a worker that moves files refuse to share a folder, whichever starts first" {
        # Each would handle every file (88 of 100 were handled twice).
        mkdir "$T/in"
        start_ferry "$T/keep" run --keep "$T/in" -- /bin/true
        wait_run_started "$T/keep"
        run --separate-stderr timeout 10 "$FERRY" run "$T/in" -- /bin/true
        assert_status 1
        [[ $stderr == *"keeps files in place in $T/in"* ]] || { echo "$stderr" >&2; false; }
        stop_ferry "$T/keep"

        start_ferry "$T/mover" run "$T/in" -- /bin/true
        wait_run_started "$T/mover"
        run --separate-stderr timeout 10 "$FERRY" run --keep "$T/in" -- /bin/true
        assert_status 1
        [[ $stderr == *"one that keeps files in place must be alone there"* ]] || { echo "$stderr" >&2; false; }
        # Two workers that move files share it as before.
        start_ferry "$T/mover2" run "$T/in" -- /bin/true
        wait_run_started "$T/mover2"
        stop_ferry "$T/mover2"
}

@test "run --keep: ferry status reads the record of a folder whose name has '#', '?' and '%'" {
        D="$T/in #1?x=%41"
        mkdir "$D"
        keep_handler
        printf 'a\n' >"$D/a.txt"
        printf 'b\n' >"$D/b.txt"
        start_ferry "$T/ferry" run --keep "$D" -- "$T/h.sh" "$T/handled" {}
        wait_nul_records "$T/handled" 2 30
        stop_ferry "$T/ferry"
        run --separate-stderr "$FERRY" status --dir "$D" --keep
        assert_status 0
        [[ $output == *"queued 0, "*"done 2"* ]] || { echo "$output" >&2; return 1; }
}
