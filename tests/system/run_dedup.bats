#!/usr/bin/env bats
# run_dedup.bats: --dedup sha256 (dedup = sha256): a file whose content the rule handled within
# --dedup-window goes to done as "duplicate of NAME (handled at TIME)", its handler not run, no
# on-done hook; a failed content is handled again; two copies at once run the handler once; the
# hash of a ferry put --marker file is its marker's; the audit trail's lines carry size and
# sha256; the combinations that cannot work are refused.

load helpers

# The handler appends the content it was given to $T/runs, one line a run; it fails while
# $T/fail names that content.
setup() {
        ferry_setup
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" \
                'c=$(cat "$1")' \
                '[ -n "${SLOW_HANDLER-}" ] && sleep 1' \
                'echo "$c" >>"'"$T"'/runs"' \
                '[ -f "'"$T"'/fail" ] && [ "$(cat "'"$T"'/fail")" = "$c" ] && exit 3' \
                'exit 0'
}

runs_of() { grep -cxF -- "$1" "$T/runs" 2>/dev/null || true; }
log_has() { grep -qaF -- "$1" "$T/ferry.err"; }

# deliver NAME CONTENT: the file appears complete, by rename.
deliver() {
        printf '%s\n' "$2" >"$T/staging"
        mv "$T/staging" "$D/$1"
}

@test "dedup: a file delivered again under a new name goes to done as a duplicate; its handler does not run, nor its on-done hook" {
        start_ferry "$T/ferry" run --dedup sha256 --on-done "$T/hook.sh {}" "$D" -- "$T/h.sh" {}
        make_handler "$T/hook.sh" 'echo "$1" >>"'"$T"'/hooked"'
        deliver first.txt invoice-42
        wait_for file_exists "$D/.ferry/done/first.txt" 30
        deliver again.txt invoice-42
        wait_for file_exists "$D/.ferry/done/again.txt" 30
        deliver other.txt invoice-43
        wait_for file_exists "$D/.ferry/done/other.txt" 30
        wait_for log_has "other.txt: done in" 30
        stop_ferry "$T/ferry"
        [[ $(runs_of invoice-42) == 1 && $(runs_of invoice-43) == 1 ]]
        grep -qE "done \[run\] $D/again.txt: duplicate of first.txt \(handled at [0-9-]{10} [0-9:]{8}\), not handled: $D/.ferry/done/again.txt" "$T/ferry.err"
        # Hooks of the two handled files; none for the duplicate.
        wait_for has_lines "$T/hooked" 2 10
        [[ $(count_lines "$T/hooked") == 2 ]]
        refute grep -q again.txt "$T/hooked"
        [[ -f $D/.ferry/dedup/$(hostname | tr './' '__').db ]]
}

@test "dedup: ferry explain says which waiting file is a duplicate, of what, as run then treats it" {
        start_ferry "$T/ferry" run --dedup sha256 "$D" -- "$T/h.sh" {}
        deliver first.txt invoice-42
        wait_for file_exists "$D/.ferry/done/first.txt" 30
        stop_ferry "$T/ferry"
        deliver again.txt invoice-42
        deliver other.txt invoice-43
        run "$FERRY" explain --dir "$D" --dedup sha256 "$D/again.txt"
        [[ $status == 0 ]]
        [[ $output == *"dedup: its content as it is now was handled as first.txt, at "*": it goes to done as a duplicate of that file, its handler not run"* ]]
        run "$FERRY" explain --dir "$D" --dedup sha256 "$D/other.txt"
        [[ $output == *"dedup: its content as it is now was not handled within the dedup window: its handler runs"* ]]
        # Outside the window, or without dedup, it is not a duplicate.
        sleep 1.1
        run "$FERRY" explain --dir "$D" --dedup sha256 --dedup-window 1s "$D/again.txt"
        [[ $output == *"was not handled within the dedup window"* ]]
        run "$FERRY" explain --dir "$D" "$D/again.txt"
        [[ $output != *dedup* ]]
        # ... and run does as explain said.
        start_ferry "$T/ferry" run --dedup sha256 "$D" -- "$T/h.sh" {}
        wait_for file_exists "$D/.ferry/done/other.txt" 30
        wait_for file_exists "$D/.ferry/done/again.txt" 30
        wait_for log_has "other.txt: done in" 30
        stop_ferry "$T/ferry"
        [[ $(runs_of invoice-42) == 1 && $(runs_of invoice-43) == 1 ]]
        log_has "$D/again.txt: duplicate of first.txt"
}

@test "dedup: ferry explain on a folder whose dedup record was never made says the content was not handled" {
        deliver one.txt alpha
        run "$FERRY" explain --dir "$D" --dedup sha256 "$D/one.txt"
        [[ $status == 0 ]]
        [[ $output == *"dedup: its content as it is now was not handled within the dedup window"* ]]
        [[ ! -e $D/.ferry/dedup ]]
}

@test "dedup: with --delete a duplicate is deleted; the metrics count it" {
        start_ferry "$T/ferry" run --dedup sha256 --delete --metrics-file "$T/metrics" "$D" -- "$T/h.sh" {}
        deliver a same
        wait_for log_has "$D/a: done in" 30
        deliver b same
        wait_for log_has "$D/b: duplicate of a" 30
        stop_ferry "$T/ferry"
        [[ ! -e $D/a && ! -e $D/b && $(runs_of same) == 1 ]]
        grep -qx 'ferry_files_duplicate_total 1' "$T/metrics"
        grep -qx 'ferry_files_done_total 2' "$T/metrics"
}

@test "dedup: a content whose handler failed is no duplicate: delivered again, it is handled again" {
        echo bad >"$T/fail"
        start_ferry "$T/ferry" run --dedup sha256 --retries 0 "$D" -- "$T/h.sh" {}
        deliver one bad
        wait_for file_exists "$D/.ferry/failed/one" 30
        rm "$T/fail"
        deliver two bad
        wait_for file_exists "$D/.ferry/done/two" 30
        stop_ferry "$T/ferry"
        [[ $(runs_of bad) == 2 ]]
        refute log_has "duplicate of"
}

@test "dedup: a content handled longer ago than --dedup-window is handled again" {
        start_ferry "$T/ferry" run --dedup sha256 --dedup-window 1h "$D" -- "$T/h.sh" {}
        deliver old.txt report
        wait_for file_exists "$D/.ferry/done/old.txt" 30
        deliver fresh.txt report
        wait_for log_has "fresh.txt: duplicate of old.txt" 30
        # Its row, back-dated by two hours: out of the window now.
        python3 - "$D/.ferry/dedup" <<'EOF'
import glob, sqlite3, sys
for path in glob.glob(sys.argv[1] + '/*.db'):
    db = sqlite3.connect(path)
    db.execute('UPDATE contents SET handled_at = handled_at - 7200 * 1000000000')
    db.commit()
EOF
        deliver late.txt report
        wait_for file_exists "$D/.ferry/done/late.txt" 30
        wait_for log_has "late.txt: done in" 30
        stop_ferry "$T/ferry"
        [[ $(runs_of report) == 2 ]]
}

@test "dedup: identical files dropped at once with --jobs 4 run the handler once; the others wait for it and are duplicates" {
        export SLOW_HANDLER=1
        start_ferry "$T/ferry" run --dedup sha256 --jobs 4 "$D" -- "$T/h.sh" {}
        for i in 1 2 3 4 5 6; do printf 'twin\n' >"$T/s$i"; done
        mv "$T"/s1 "$T"/s2 "$T"/s3 "$T"/s4 "$T"/s5 "$T"/s6 "$D"/
        for i in 1 2 3 4 5 6; do wait_for file_exists "$D/.ferry/done/s$i" 30; done
        stop_ferry "$T/ferry"
        [[ $(runs_of twin) == 1 ]]
        [[ $(grep -c ': duplicate of s[1-6] ' "$T/ferry.err") == 5 ]]
}

@test "dedup: a name with a newline and bytes that are not UTF-8 is found and named as it is" {
        name=$'we\nird\xff.bin'
        start_ferry "$T/ferry" run --dedup sha256 --log-format json "$D" -- "$T/h.sh" {}
        printf 'bytes\n' >"$T/staging"
        mv "$T/staging" "$D/$name"
        wait_for file_exists "$D/.ferry/done/$name" 30
        deliver copy bytes
        wait_for file_exists "$D/.ferry/done/copy" 30
        stop_ferry "$T/ferry"
        [[ $(runs_of bytes) == 1 ]]
        # The audit line of the duplicate names the first file by its exact bytes.
        python3 - "$D/.ferry/audit" "$name" <<'EOF'
import base64, glob, json, os, sys
want = os.fsencode(sys.argv[2])
found = 0
for path in glob.glob(sys.argv[1] + '/*.jsonl'):
    for raw in open(path, 'rb'):
        obj = json.loads(raw)
        if obj['event'] != 'duplicate':
            continue
        of = base64.b64decode(obj['duplicate_of_base64']) if 'duplicate_of_base64' in obj else obj['duplicate_of'].encode()
        if of != want or obj['path'] != 'copy':
            sys.exit(f'duplicate of {of!r}, path {obj["path"]!r}')
        found += 1
if found != 1:
    sys.exit(f'{found} duplicate lines')
EOF
}

@test "dedup: every audit line about a file has its size; the ones after its hash is known have its sha256" {
        start_ferry "$T/ferry" run --dedup sha256 "$D" -- "$T/h.sh" {}
        deliver a alpha
        wait_for file_exists "$D/.ferry/done/a" 30
        deliver b alpha
        wait_for file_exists "$D/.ferry/done/b" 30
        stop_ferry "$T/ferry"
        sha=$(printf 'alpha\n' | sha256sum | cut -d' ' -f1)
        python3 - "$D/.ferry/audit" "$sha" <<'EOF'
import collections, glob, json, sys
events = collections.Counter()
for path in glob.glob(sys.argv[1] + '/*.jsonl'):
    for raw in open(path, 'rb'):
        obj = json.loads(raw)
        events[obj['event']] += 1
        if obj.get('size') != 6:
            sys.exit(f'no size 6: {raw!r}')
        if obj['event'] in ('started', 'done', 'duplicate') and obj.get('sha256') != sys.argv[2]:
            sys.exit(f'no sha256: {raw!r}')
if events != {'claimed': 2, 'started': 1, 'done': 1, 'duplicate': 1}:
    sys.exit(f'events: {dict(events)}')
EOF
        run "$FERRY" history --dir "$D" b
        assert_status 0
        [[ $output == *duplicate*"duplicate of a"* ]]
        [[ $output == *"6 B, sha256 ${sha:0:12}"* ]]
}

@test "dedup: a ferry put --marker file's hash is its marker's" {
        printf 'shipped\n' >"$T/a.dat"
        start_ferry "$T/ferry" run --dedup sha256 --ready done-file "$D" -- "$T/h.sh" {}
        "$FERRY" put --marker "$T/a.dat" "$D/one.dat"
        wait_for file_exists "$D/.ferry/done/one.dat" 30
        "$FERRY" put --marker "$T/a.dat" "$D/two.dat"
        wait_for file_exists "$D/.ferry/done/two.dat" 30
        stop_ferry "$T/ferry"
        [[ $(runs_of shipped) == 1 ]]
        grep -q "two.dat: duplicate of one.dat (handled at .*; SHA-256 from its marker), not handled" "$T/ferry.err"
        # Markers go with their files, the duplicate's too.
        [[ -f $D/.ferry/done/one.dat.done && -f $D/.ferry/done/two.dat.done ]]
}

@test "dedup: --check refuses keep, batch, an unknown method and a window under a second, each naming the fix" {
        run "$FERRY" run --check --dedup sha256 --keep "$D" -- /bin/true
        assert_status 2
        [[ $output == *"dedup and keep exclude each other"*"use a done folder, or delete"* ]]
        run "$FERRY" run --check --dedup sha256 --batch 4 "$D" -- /bin/true {paths}
        assert_status 2
        [[ $output == *"dedup and batch exclude each other"*"drop batch, or dedup"* ]]
        run "$FERRY" run --check --dedup md5 "$D" -- /bin/true
        assert_status 2
        [[ $output == *"dedup: 'md5' is not sha256 or off"* ]]
        run "$FERRY" run --check --dedup sha256 --dedup-window 0s "$D" -- /bin/true
        assert_status 2
        [[ $output == *"dedup-window: '0s' is too short (at least 1s)"* ]]
        run "$FERRY" run --check --dedup sha256 --dedup-window 30d "$D" -- /bin/true
        assert_status 0
        printf '[rule scan]\ndir = %s\ncommand = /bin/true {}\ndedup = sha256\ndedup-window = 2d\n' "$D" >"$T/ferry.conf"
        run "$FERRY" run --check -c "$T/ferry.conf"
        assert_status 0
}
