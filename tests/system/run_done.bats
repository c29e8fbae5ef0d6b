#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_done.bats: where a handled file ends: the done folder (default or --done, keeping the
# subfolder with -r, a name already there getting .1, .2, never replaced), the failed folder
# (same rules, each with its own note), or nowhere with --delete.

load helpers

# deliver DIR NAME TEXT: NAME arrives in DIR complete (written beside, renamed in).
deliver() {
        printf '%s\n' "$3" >"$T/.deliver"
        mv -- "$T/.deliver" "$1/$2"
}

# assert_content FILE TEXT: FILE holds the line TEXT and nothing else.
assert_content() {
        printf '%s\n' "$2" >"$T/.want"
        assert_same_file "$T/.want" "$1"
}

# run_all_done OUT N: ferry's stderr (OUT.err) holds N done records.
run_all_done() { (($(grep -ac '^ferry: done \[run\] ' "$1.err" || true) >= $2)); }

# The handler fails for names that start with "bad", succeeds for the others.
fail_bad_handler() { make_handler "$T/h.sh" 'case "${1##*/}" in bad*) echo "no good: ${1##*/}" >&2; exit 5;; esac'; }

@test "run: the same name handled three times: done holds NAME, NAME.1, NAME.2, none replaced" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/ferry" run "$D" -- true {}
        wait_run_started "$T/ferry"
        for version in 1 2 3; do
                deliver "$D" same.txt "version $version"
                wait_files "$D/.ferry/done" "$version" 30
        done
        stop_ferry "$T/ferry"

        assert_content "$D/.ferry/done/same.txt" "version 1"
        assert_content "$D/.ferry/done/same.txt.1" "version 2"
        assert_content "$D/.ferry/done/same.txt.2" "version 3"
        [[ $(count_files "$D/.ferry/done") -eq 3 ]]
        assert_no_claims "$D"
}

@test "run: the same name failing twice: failed holds NAME and NAME.1, each with its own note" {
        D=$T/in
        mkdir "$D"
        fail_bad_handler
        start_ferry "$T/ferry" run --retries 0 "$D" -- "$T/h.sh" {}
        wait_run_started "$T/ferry"
        deliver "$D" bad.txt "first"
        wait_for file_exists "$D/.ferry/failed/bad.txt.ferry-error" 30
        deliver "$D" bad.txt "second"
        wait_for file_exists "$D/.ferry/failed/bad.txt.1.ferry-error" 30
        stop_ferry "$T/ferry"

        assert_content "$D/.ferry/failed/bad.txt" "first"
        assert_content "$D/.ferry/failed/bad.txt.1" "second"
        has_line "$D/.ferry/failed/bad.txt.ferry-error" "exit-status: 5"
        has_line "$D/.ferry/failed/bad.txt.1.ferry-error" "exit-status: 5"
        has_line "$D/.ferry/failed/bad.txt.1.ferry-error" "no good: bad.txt"
        [[ $(count_files "$D/.ferry/failed") -eq 4 ]]
}

@test "run: --done and --failed folders, created when missing, keep the subfolder with -r" {
        D=$T/in
        mkdir -p "$D/2026/04"
        fail_bad_handler
        printf 'a\n' >"$D/top.txt"
        printf 'b\n' >"$D/2026/04/deep.txt"
        printf 'c\n' >"$D/2026/bad.txt"
        start_ferry "$T/ferry" run -r --retries 0 --done "$T/handled/ok" --failed "$T/handled/ko" \
                "$D" -- "$T/h.sh" {}
        wait_files "$T/handled/ok" 2 30
        wait_for file_exists "$T/handled/ko/2026/bad.txt.ferry-error" 30
        stop_ferry "$T/ferry"

        assert_content "$T/handled/ok/top.txt" a
        assert_content "$T/handled/ok/2026/04/deep.txt" b
        assert_content "$T/handled/ko/2026/bad.txt" c
        has_line "$T/handled/ko/2026/bad.txt.ferry-error" "path: $D/2026/bad.txt"
        [[ $(count_files "$T/handled") -eq 4 ]]
        # Nothing in the default folders, nothing left behind; the subfolders stay.
        [[ $(count_files "$D/.ferry/done") -eq 0 && $(count_files "$D/.ferry/failed") -eq 0 ]]
        assert_queue_empty "$D"
        assert_no_claims "$D"
        [[ -d $D/2026/04 ]]
}

@test "run: --delete removes handled files; a failing file still goes to failed" {
        D=$T/in
        mkdir "$D"
        fail_bad_handler
        make_numbered "$D" ok 1 20
        printf 'c\n' >"$D/bad.txt"
        start_ferry "$T/ferry" run -j 2 --retries 0 --delete "$D" -- "$T/h.sh" {}
        wait_for file_exists "$D/.ferry/failed/bad.txt.ferry-error" 30
        wait_for run_all_done "$T/ferry" 20 30
        stop_ferry "$T/ferry"

        assert_queue_empty "$D"
        assert_no_claims "$D"
        [[ $(count_files "$D/.ferry/done") -eq 0 ]]
        assert_content "$D/.ferry/failed/bad.txt" c
        [[ $(grep -ac '^ferry: done \[run\] .*; deleted$' "$T/ferry.err") -eq 20 ]] || {
                echo "expected 20 'done ... deleted' records:" >&2
                grep -a '^ferry: done' "$T/ferry.err" | head >&2
                return 1
        }
}

@test "run -r: .ferry renamed to a plain name while ferry runs: its done files are not taken for new work" {
        # What someone who may rename in a folder without the sticky bit can do; before, the
        # done files came back as new work under the new name, again and again.
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/ferry" run -r "$D" -- "$T/h.sh" "$T/handled"
        wait_run_started "$T/ferry"
        printf 'one\n' >"$D/one"
        wait_for file_exists "$D/.ferry/done/one" 30
        mv "$D/.ferry" "$D/renamed"
        printf 'two\n' >"$D/two"
        wait_for file_exists "$D/renamed/done/two" 30
        wait_for has_text "$T/ferry.err" "renamed/done/one: skipped: it is inside $D/.ferry" 30
        stop_ferry "$T/ferry"
        printf 'one\0two\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        [[ $(find "$D/renamed/done" -type f | wc -l) -eq 2 ]]
}

@test "run: what a handler writes beside its file in the claim folder goes with the file, and is never taken for a claim" {
        D=$T/in
        mkdir "$D"
        # Writes its output next to its input, as many handlers do; fails for names that start with "bad".
        make_handler "$T/h.sh" 'printf "%s\n" "$1" >>"'"$T"'/ran"' 'cp -- "$1" "${1%.txt}.out"' \
                'case "${1##*/}" in bad*) exit 4;; esac'
        start_ferry "$T/ferry" run --match '*.txt' --retries 0 "$D" -- "$T/h.sh" {}
        wait_run_started "$T/ferry"
        deliver "$D" a.txt alpha
        deliver "$D" bad.txt beta
        wait_for file_exists "$D/.ferry/failed/bad.txt" 30
        wait_for file_exists "$D/.ferry/done/a.txt" 30
        wait_for run_all_done "$T/ferry" 1 30
        stop_ferry "$T/ferry"
        # Beside the file it came with, in done and in failed; said once each.
        assert_content "$D/.ferry/done/a.out" alpha
        assert_content "$D/.ferry/failed/bad.out" beta
        grep -qF "$D/a.txt: its handler left 1 file beside it in its claim folder: moved to $D/.ferry/done" "$T/ferry.err"
        grep -qF "$D/bad.txt: its handler left 1 file beside it in its claim folder: moved to $D/.ferry/failed" "$T/ferry.err"
        assert_no_claims "$D"
        # A worker started again finds no claim to take over: nothing runs.
        start_ferry "$T/ferry2" run --match '*.txt' --retries 0 "$D" -- "$T/h.sh" {}
        wait_run_started "$T/ferry2"
        stop_ferry "$T/ferry2"
        [[ $(count_lines "$T/ran") == 2 ]] || { cat "$T/ran" >&2; return 1; }
        refute grep -q "recovered" "$T/ferry2.err"
}

@test "run --delete: what a handler wrote beside its file goes to the failed folder, not lost with the file" {
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" 'cp -- "$1" "${1%.txt}.out"'
        start_ferry "$T/ferry" run --match '*.txt' --delete "$D" -- "$T/h.sh" {}
        wait_run_started "$T/ferry"
        deliver "$D" c.txt gamma
        wait_for run_all_done "$T/ferry" 1 30
        stop_ferry "$T/ferry"
        [[ ! -e $D/c.txt && ! -e $D/.ferry/done/c.txt ]]
        assert_content "$D/.ferry/failed/c.out" gamma
        assert_no_claims "$D"
}

@test "run: a hidden name a handler leaves beside its file goes with it too; the worker leaves nothing at a stop" {
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" 'printf cache >"${1%/*}/.cache-${1##*/}"'
        start_ferry "$T/ferry" run "$D" -- "$T/h.sh" {}
        wait_run_started "$T/ferry"
        deliver "$D" d.txt delta
        wait_for run_all_done "$T/ferry" 1 30
        stop_ferry "$T/ferry"
        [[ $(cat "$D/.ferry/done/.cache-d.txt") == cache ]]
        left=$(find "$D/.ferry/work" -mindepth 1 ! -name .clock)
        [[ -z $left ]] || { echo "left: $left" >&2; return 1; }
}
