#!/usr/bin/env bats
# history.bats: the audit trail in DIR/.ferry/audit (one JSON line per claim, start, outcome,
# requeue and purge, a file a day and a host) and ferry history, which reads it back.

load helpers

# events FILE: the "event" of each JSON line of FILE, one a line
events() { python3 -c 'import json, sys
for line in open(sys.argv[1], "rb"):
    print(json.loads(line)["event"])' "$1"; }

@test "history: a file that failed, was requeued and then succeeded, step by step, from the audit trail" {
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" '[ -e "$1" ] || exit 7'
        printf 'x\n' >"$D/a.txt"
        printf 'y\n' >"$D/other.txt"
        start_ferry "$T/ferry" run --retries 0 "$D" -- "$T/h.sh" "$T/fixed"
        wait_for file_exists "$D/.ferry/failed/a.txt" 30
        touch "$T/fixed"
        run "$FERRY" retry --dir "$D" --all
        ((status == 0))
        wait_for file_exists "$D/.ferry/done/a.txt" 30
        stop_ferry "$T/ferry"
        # Every line of the trail is a JSON object.
        local f
        for f in "$D"/.ferry/audit/*.jsonl; do
                python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1], "rb")]' "$f"
        done
        [[ $(ls "$D/.ferry/audit") == "$(date -u +%Y-%m-%d).$(hostname | tr ./ __).jsonl" ]]
        run "$FERRY" history --dir "$D" "$D/a.txt" --json
        ((status == 0))
        printf '%s\n' "$output" >"$T/history"
        events "$T/history" >"$T/events"
        printf '%s\n' claimed started failed requeued claimed started done >"$T/want"
        diff "$T/want" "$T/events"
        grep -q '"event":"failed".*"exit_code":7' "$T/history"
        refute grep -q other.txt "$T/history"
        # By name, in text
        run "$FERRY" history --dir "$D" a.txt
        ((status == 0))
        [[ ${lines[2]} == *" failed "*" a.txt "*"exit status 7"* ]]
        [[ ${lines[6]} == *" done "* ]]
        run "$FERRY" history --dir "$D" never-seen.txt
        ((status == 0))
        [[ $output == "nothing in the audit trail about never-seen.txt" ]]
}

@test "history: any name (a newline, a byte that is not UTF-8) is found; purged files are in the trail; audit = off keeps none" {
        D=$T/in
        mkdir "$D" "$T/quiet"
        local name=$'odd\nna\xffme'
        printf 'x\n' >"$D/$name"
        start_ferry "$T/ferry" run "$D" -- /bin/true
        wait_files "$D/.ferry/done" 1 30
        stop_ferry "$T/ferry"
        run "$FERRY" history --dir "$D" "$name" --json
        ((status == 0))
        [[ $output == *'"event":"done"'*'"path_base64":"b2RkCm5h/21l"'* ]]
        # a purge is in the trail too
        mkdir -p "$D/.ferry/done/2019"
        printf 'old\n' >"$D/.ferry/done/2019/z"
        run "$FERRY" purge --dir "$D" --done-layout %Y --done-retention 1d
        ((status == 0))
        run "$FERRY" history --dir "$D" 2019 --json
        [[ $output == *'"event":"purged"'*'"path":".ferry/done/2019"'* ]]
        # audit = off
        printf 'x\n' >"$T/quiet/q"
        start_ferry "$T/ferry2" run --audit off "$T/quiet" -- /bin/true
        wait_files "$T/quiet/.ferry/done" 1 30
        stop_ferry "$T/ferry2"
        [[ ! -e $T/quiet/.ferry/audit ]]
}

@test "history: -c FILE finds the rule whose folder holds PATH" {
        mkdir "$T/a" "$T/b"
        cat >"$T/ferry.conf" <<CONF
[rule a]
dir = $T/a
command = /bin/true

[rule b]
dir = $T/b
command = /bin/true
CONF
        printf 'x\n' >"$T/b/f"
        start_ferry "$T/ferry" run -c "$T/ferry.conf"
        wait_files "$T/b/.ferry/done" 1 30
        stop_ferry "$T/ferry"
        run "$FERRY" history -c "$T/ferry.conf" "$T/b/f"
        ((status == 0))
        [[ ${#lines[@]} -eq 3 && ${lines[2]} == *" done "* ]]
        run "$FERRY" history -c "$T/ferry.conf" "$T/elsewhere/f"
        ((status == 1))
}
