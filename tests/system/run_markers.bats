#!/usr/bin/env bats
# run_markers.bats: with --ready done-file, a file's NAME.done marker leaves the folder with
# its file: into the done folder or the failed folder beside it, or removed with --delete.
# Left behind, it would vouch for (or refuse) a later file of the same name.

load helpers

# a handler that fails for names starting with bad, and records the content of the others
make_marker_handler() {
        printf '#!/bin/sh\ncase "$FERRY_NAME" in bad*) exit 5;; esac\ncat "$1" >>"%s/handled"\n' "$T" >"$T/h.sh"
        chmod +x "$T/h.sh"
}

@test "done-file: a handled file's marker goes to done beside it, a failed one's to failed; none is left" {
        mkdir "$T/in" "$T/src"
        make_marker_handler
        start_ferry "$T/ferry" run --ready done-file --retries 0 "$T/in" -- "$T/h.sh" {}
        wait_run_started "$T/ferry"
        printf 'first\n' >"$T/src/a.csv"
        printf 'bad\n' >"$T/src/bad.csv"
        "$FERRY" put --marker "$T/src/a.csv" "$T/src/bad.csv" "$T/in/"
        wait_for file_exists "$T/in/.ferry/failed/bad.csv.ferry-error" 30
        wait_for file_exists "$T/in/.ferry/done/a.csv.done" 30
        [[ -f $T/in/.ferry/done/a.csv && -f $T/in/.ferry/failed/bad.csv && -f $T/in/.ferry/failed/bad.csv.done ]]
        [[ ! -e $T/in/a.csv.done && ! -e $T/in/bad.csv.done ]]

        # The same name again, with its own marker: handled with its new content.
        printf 'second\n' >"$T/src/a.csv"
        "$FERRY" put --marker "$T/src/a.csv" "$T/in/"
        wait_for file_exists "$T/in/.ferry/done/a.csv.1.done" 30
        stop_ferry "$T/ferry"
        printf 'first\nsecond\n' >"$T/want"
        assert_same_file "$T/want" "$T/handled"
        [[ ! -e $T/in/a.csv.done ]]
        refute grep -q 'does not match its done-marker' "$T/ferry.err"
}

@test "done-file with --delete: the marker is removed with its file" {
        mkdir "$T/in" "$T/src"
        make_marker_handler
        start_ferry "$T/ferry" run --ready done-file --delete "$T/in" -- "$T/h.sh" {}
        wait_run_started "$T/ferry"
        printf 'x\n' >"$T/src/a.csv"
        "$FERRY" put --marker "$T/src/a.csv" "$T/in/"
        wait_lines "$T/handled" 1 30
        wait_for proc_gone_marker 30
        stop_ferry "$T/ferry"
        [[ ! -e $T/in/a.csv && ! -e $T/in/a.csv.done ]]
}

proc_gone_marker() { [[ ! -e $T/in/a.csv.done ]]; }
