#!/usr/bin/env bats
# shellcheck disable=SC2016,SC1083 # single-quoted handler lines are meant literally
# run_batch.bats: with --batch N one handler run gets up to N files as {paths}, one argument
# each: every file is handled once, in fewer runs than files.

load helpers

@test "run: --batch 50: 1,000 files each handled once, in runs of up to 50 files" {
        D=$T/in
        mkdir "$D"
        # $1: the log; then the claimed paths. Records the file count of the run and each name.
        make_handler "$T/h.sh" \
                'log=$1' \
                'shift' \
                'printf "%s\n" "$#" >>"$log.runs"' \
                'for p in "$@"; do [ -f "$p" ] && printf "%s\0" "${p##*/}" >>"$log"; done'
        make_numbered "$D" pre 1 600
        {
                numbered_names pre 1 600
                numbered_names new 1 400
        } >"$T/want"
        start_ferry "$T/ferry" run -j 2 --batch 50 "$D" -- "$T/h.sh" "$T/handled" {paths}
        wait_run_started "$T/ferry"
        drop_numbered "$D" new 1 400
        wait_files "$D/.ferry/done" 1000 60
        stop_ferry "$T/ferry"

        assert_same_nul_set "$T/want" "$T/handled"
        files_nul "$D/.ferry/done" "$T/done"
        assert_same_nul_set "$T/want" "$T/done"
        assert_queue_empty "$D"
        assert_no_claims "$D"

        runs=$(count_lines "$T/handled.runs")
        largest=$(sort -n "$T/handled.runs" | tail -1)
        total=$(awk '{ s += $1 } END { print s }' "$T/handled.runs")
        echo "# $runs runs for 1,000 files; largest $largest" >&3
        ((total == 1000)) || {
                echo "the runs were given $total paths in all, expected 1000" >&2
                return 1
        }
        ((largest <= 50)) || {
                echo "a run got $largest files, more than --batch 50" >&2
                return 1
        }
        # The 600 files present at start are ready together: full batches.
        ((largest == 50)) || {
                echo "no run got a full batch of 50 (largest $largest)" >&2
                return 1
        }
        ((runs < 1000 / 5)) || {
                echo "$runs runs for 1,000 files: batching barely happened" >&2
                sort -n "$T/handled.runs" | uniq -c >&2
                return 1
        }
}

@test "run: --batch with a failing handler: every file of the batch is failed, with a sidecar each" {
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" 'echo "batch of $#" >&2' 'exit 4'
        make_numbered "$D" f 1 5
        start_ferry "$T/ferry" run -j 1 --batch 10 --retries 0 "$D" -- "$T/h.sh" {paths}
        wait_files "$D/.ferry/failed" 10 30
        stop_ferry "$T/ferry"

        for i in 1 2 3 4 5; do
                F=$D/.ferry/failed/f-0000$i
                [[ -f $F ]]
                has_line "$F.ferry-error" "exit-status: 4" || {
                        echo "sidecar of $F:" >&2
                        cat -A "$F.ferry-error" >&2
                        return 1
                }
        done
        assert_queue_empty "$D"
        assert_no_claims "$D"
}

@test "run: claim folders emptied are used again, never one a handler left something in; none is left at a stop" {
        D=$T/in
        mkdir "$D"
        # Lists what is beside its file in the claim folder; the handler of mess-* leaves a file there.
        make_handler "$T/h.sh" \
                'for p in "$@"; do' \
                '  ls -A "${p%/*}" | grep -vxF -e "${p##*/}" -e .handler -e .origin | sed "s|^|${p##*/}: |" >>"'"$T"'/beside"' \
                '  case ${p##*/} in mess*) echo junk >"${p%/*}/left-by-${p##*/}" ;; esac' \
                'done'
        start_ferry "$T/ferry" run -j 1 "$D" -- "$T/h.sh" {}
        wait_run_started "$T/ferry"
        for round in 1 2 3; do
                drop_numbered "$D" "mess$round" 1 3
                drop_numbered "$D" "clean$round" 1 20
                wait_files "$D/.ferry/done" $((round * (23 + 3))) 60 # and what the messy ones left
        done
        # While it runs, the emptied folders kept are few (jobs x (batch + 1)), the messy ones not among them.
        kept=$(find "$D/.ferry/work" -mindepth 2 -maxdepth 2 -type d -empty | wc -l)
        # What the messy handlers left went to done with their files.
        messy=$(find "$D/.ferry/done" -name 'left-by-mess*' | wc -l)
        ((messy == 9)) || { find "$D/.ferry" >&2; return 1; }
        echo "# claim folders kept: $kept" >&3
        ((kept <= 2 + 3 * 3)) || { find "$D/.ferry/work" >&2; return 1; }
        stop_ferry "$T/ferry"
        [[ ! -s $T/beside ]] || { echo "a handler found something beside its file:" >&2; cat "$T/beside" >&2; return 1; }
        [[ $(find "$D/.ferry/done" -type f | wc -l) == $((69 + 9)) ]]
        # A stop leaves no worker folder behind, kept claim folders and all.
        left=$(find "$D/.ferry/work" -mindepth 1 ! -name .clock)
        [[ -z $left ]] || { echo "left: $left" >&2; return 1; }
}
