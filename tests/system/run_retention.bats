#!/usr/bin/env bats
# run_retention.bats: done-layout puts done files into dated folders; done-retention and
# failed-retention remove what has been in those folders longer, by ferry run now and then and
# by ferry purge; without them nothing is ever removed. Old dated folders are made with names
# in the past (a folder's period is read from its name); single files age by the time they
# arrived, so their tests use a retention of a second or two.

load helpers

gone() { [[ ! -e $1 && ! -L $1 ]]; }

@test "run: done-layout puts each done file into the folder of its day, beneath it the file's subfolder" {
        D=$T/in
        mkdir -p "$D/sub"
        printf 'a\n' >"$D/a.txt"
        printf 'g\n' >"$D/sub/g.txt"
        local before after
        before=$(date +%Y/%m/%d)
        start_ferry "$T/ferry" run -r --done-layout '%Y/%m/%d' "$D" -- /bin/true
        wait_files "$D/.ferry/done" 2 30
        stop_ferry "$T/ferry"
        after=$(date +%Y/%m/%d)
        files_nul "$D/.ferry/done" "$T/done"
        # (a run across midnight may have used either day)
        printf '%s/a.txt\0%s/sub/g.txt\0' "$before" "$before" >"$T/want"
        if ! cmp -s "$T/want" <(sort -z "$T/done"); then
                printf '%s/a.txt\0%s/sub/g.txt\0' "$after" "$after" >"$T/want"
        fi
        assert_same_nul_set "$T/want" "$T/done"
        grep -q "done in .*: $D/.ferry/done/\($before\|$after\)/a.txt" "$T/ferry.err"
        # explain finds it in its dated folder
        run "$FERRY" explain --dir "$D" -r --done-layout '%Y/%m/%d' "$D/sub/g.txt"
        ((status == 0))
        [[ $output == *"it is in the done folder as $D/.ferry/done/"*"/sub/g.txt"* ]]
}

@test "run: done-layout refuses what it cannot make or read back; retention needs a done folder" {
        D=$T/in
        mkdir "$D"
        local bad
        for bad in '' /abs '%Y/../x' '%Y//%m' '%Y-%q' '%'; do
                run "$FERRY" run --check --done-layout "$bad" "$D" -- /bin/true
                ((status == 2)) || {
                        echo "done-layout '$bad': status $status: $output" >&2
                        false
                }
                [[ $output == *done-layout* ]]
        done
        run "$FERRY" run --check --delete --done-retention 30d "$D" -- /bin/true
        ((status != 0))
        [[ $output == *"done-retention need a done folder"* ]]
        run "$FERRY" run --check --done-retention 0s "$D" -- /bin/true
        ((status == 2))
        run "$FERRY" run --check --done-layout '%Y/week-%m-%d/%H%M' --done-retention 30d --failed-retention 2h "$D" -- /bin/true
        ((status == 0))
}

@test "run: a dated folder whose period ended longer ago than done-retention goes whole; a newer one, and the failed folder without failed-retention, stay" {
        D=$T/in
        local done=$D/.ferry/done today month
        today=$(date +%Y/%m/%d)
        month=$(date +%Y/%m)
        mkdir -p "$D/.ferry/failed" "$done/2020/01/01/sub" "$done/2020/01/02" "$done/$today" "$done/$month/notaday"
        chmod 0711 "$D/.ferry"
        chmod 0700 "$D/.ferry/failed" "$done"
        printf 'old\n' >"$done/2020/01/01/x"
        printf 'old\n' >"$done/2020/01/01/sub/y"
        printf 'old\n' >"$done/2020/01/02/z"
        printf 'new\n' >"$done/$today/kept"
        printf 'new\n' >"$done/$month/notaday/kept2"
        printf 'old note\n' >"$D/.ferry/failed/f"
        touch -d '2020-01-01' "$D/.ferry/failed/f" # its mtime; it arrived now
        start_ferry "$T/ferry" run --done-layout '%Y/%m/%d' --done-retention 30d "$D" -- /bin/true
        wait_for gone "$done/2020" 30
        grep -q 'purged 3 files and 1 folder older than their retention' "$T/ferry.err"
        stop_ferry "$T/ferry"
        [[ -f $done/$today/kept && -f $done/$month/notaday/kept2 && -f $D/.ferry/failed/f ]]
}

@test "run: failed-retention removes failed files and their notes once they have been there that long; done files stay without done-retention" {
        D=$T/in
        mkdir "$D"
        make_handler "$T/fail.sh" 'case $1 in *bad*) exit 3 ;; esac'
        printf 'x\n' >"$D/bad.txt"
        printf 'y\n' >"$D/good.txt"
        start_ferry "$T/ferry" run --retries 0 --failed-retention 2s "$D" -- "$T/fail.sh" {}
        wait_for file_exists "$D/.ferry/done/good.txt" 30
        wait_for has_text "$T/ferry.err" 'bad.txt: failed' 30
        # Failed now, with its note; gone after 2 s, in a sweep at most a second later.
        wait_for gone "$D/.ferry/failed/bad.txt" 30
        [[ -z $(find "$D/.ferry/failed" -mindepth 1 ! -type d) ]] || {
                find "$D/.ferry/failed" >&2
                false
        }
        stop_ferry "$T/ferry"
        [[ -f $D/.ferry/done/good.txt ]]
        grep -q 'purged [12] files\? and 0 folders older than their retention' "$T/ferry.err"
}

@test "purge: --dry-run lists and removes nothing; then removes; links are removed, never followed, and nothing outside is touched" {
        D=$T/in
        local done=$D/.ferry/done
        mkdir -p "$done/2019/12/31" "$D/.ferry/failed" "$T/outside/deep"
        chmod 0711 "$D/.ferry"
        chmod 0700 "$D/.ferry/failed" "$done"
        printf 'canary\n' >"$T/outside/deep/canary"
        printf 'old\n' >"$done/2019/12/31/x"
        ln -s "$T/outside" "$done/2019/12/31/link"
        ln -s "$T/outside" "$D/.ferry/failed/link"
        ln -s "$T/outside/deep/canary" "$D/.ferry/failed/filelink"
        printf 'f\n' >"$D/.ferry/failed/f"
        sleep 1.1 # the failed entries' arrival, to be older than a second
        run "$FERRY" purge --dir "$D" --done-layout '%Y/%m/%d' --done-retention 7d --failed-retention 1s --dry-run
        ((status == 0))
        [[ $output == *"would remove $done/2019/ (a dated folder, whole"* ]]
        [[ $output == *"would remove $D/.ferry/failed/f (there since"* ]]
        [[ -f $done/2019/12/31/x && -f $D/.ferry/failed/f && -L $D/.ferry/failed/link ]]
        run "$FERRY" purge --dir "$D" --done-layout '%Y/%m/%d' --done-retention 7d --failed-retention 1s
        ((status == 0))
        [[ $output == *"removed $done/2019/"* ]]
        gone "$done/2019"
        gone "$D/.ferry/failed/f"
        gone "$D/.ferry/failed/link"
        gone "$D/.ferry/failed/filelink"
        [[ $(cat "$T/outside/deep/canary") == canary ]]
        run "$FERRY" purge --dir "$D" --done-retention 7d
        ((status == 0))
        [[ $output == "nothing is older than its retention" ]]
        run "$FERRY" purge --dir "$D" --delete --done-retention 7d
        ((status == 1))
        [[ $output == *"done-retention need a done folder (not delete)"* ]]
        run "$FERRY" purge --dir "$D" stray
        ((status == 2))
}

@test "purge: -c FILE [RULE] uses each rule's retention keys" {
        mkdir -p "$T/a/.ferry/done/2018" "$T/b/.ferry/done/2018"
        chmod 0711 "$T/a/.ferry" "$T/b/.ferry"
        chmod 0700 "$T/a/.ferry/done" "$T/b/.ferry/done"
        printf 'x\n' >"$T/a/.ferry/done/2018/x"
        printf 'x\n' >"$T/b/.ferry/done/2018/x"
        cat >"$T/ferry.conf" <<CONF
[rule a]
dir = $T/a
command = /bin/true
done-layout = %Y
done-retention = 30d

[rule b]
dir = $T/b
command = /bin/true
CONF
        run "$FERRY" purge -c "$T/ferry.conf" b
        ((status == 0))
        [[ -f $T/a/.ferry/done/2018/x && -f $T/b/.ferry/done/2018/x ]]
        run "$FERRY" purge -c "$T/ferry.conf"
        ((status == 0))
        gone "$T/a/.ferry/done/2018"
        [[ -f $T/b/.ferry/done/2018/x ]]
        run "$FERRY" purge -c "$T/ferry.conf" nosuchrule
        ((status == 2))
}

@test "purge: a layout part without a date (archive/%Y/%m) still leads to the dated folders beneath it" {
        D=$T/in
        local done=$D/.ferry/done now
        now=$(date +%Y/%m)
        mkdir -p "$done/archive/2019/05" "$done/archive/$now"
        chmod 0711 "$D/.ferry"
        chmod 0700 "$done"
        printf 'old\n' >"$done/archive/2019/05/a"
        printf 'new\n' >"$done/archive/$now/b"
        run "$FERRY" purge --dir "$D" --done-layout 'archive/%Y/%m' --done-retention 30d
        ((status == 0))
        [[ $output == "removed $done/archive/2019/ (a dated folder, whole; its period ended 2020-01-01 00:00)" ]]
        [[ -f $done/archive/$now/b && ! -e $done/archive/2019 ]]
}

@test "audit-retention: the trail's days that ended longer ago go (every host's), by purge and by run; today's, links and other names stay" {
        D=$T/in
        local audit=$D/.ferry/audit today
        today=$(date -u +%F)
        mkdir -p "$audit" "$T/outside"
        chmod 0711 "$D/.ferry"
        chmod 0700 "$audit"
        printf 'canary\n' >"$T/outside/canary"
        printf '{}\n' >"$audit/2019-01-01.hostA.jsonl"
        printf '{}\n' >"$audit/2019-01-02.other_host.jsonl"
        printf '{}\n' >"$audit/$today.hostA.jsonl"
        ln -s "$T/outside/canary" "$audit/2018-01-01.planted.jsonl"
        mkdir "$audit/2017-01-01.dir.jsonl"
        printf 'x\n' >"$audit/notes.txt"
        run "$FERRY" purge --dir "$D" --audit-retention 30d --dry-run
        ((status == 0))
        [[ $output == *"would remove $audit/2019-01-01.hostA.jsonl (a day of the audit trail, ended 2019-01-0"* && $output == *"would remove $audit/2019-01-02.other_host.jsonl"* ]] ||
                { echo "$output" >&2; return 1; }
        [[ -f $audit/2019-01-01.hostA.jsonl && -f $audit/2019-01-02.other_host.jsonl ]]
        run "$FERRY" purge --dir "$D" --audit-retention 30d
        ((status == 0))
        gone "$audit/2019-01-01.hostA.jsonl"
        gone "$audit/2019-01-02.other_host.jsonl"
        [[ -f $audit/$today.hostA.jsonl && -L $audit/2018-01-01.planted.jsonl && -d $audit/2017-01-01.dir.jsonl && -f $audit/notes.txt ]]
        [[ $(cat "$T/outside/canary") == canary ]]

        # A running worker sweeps the trail at start: a day that ended more than a day ago goes.
        printf '{}\n' >"$audit/2020-02-29.hostA.jsonl"
        start_ferry "$T/run" run --audit-retention 1d "$D" -- true {}
        wait_run_started "$T/run"
        wait_for has_text "$T/run.err" "removed 1 day of the audit trail older than its retention" 10
        gone "$audit/2020-02-29.hostA.jsonl"
        [[ -f $audit/$today.hostA.jsonl ]]
        stop_ferry "$T/run"
        run "$FERRY" run --audit-retention 0.5s "$D" -- true {}
        ((status == 2))
        [[ $output == *"audit-retention: '0.5s' is too short"* ]]
}
