#!/usr/bin/env bats
# output.bats: what `ferry watch` prints and when it stops: --format, text escaping, --json,
# -0, --count, --timeout, --include/--exclude, --events, --existing, and paths as given.

load helpers

@test "output: --format '%e|%n|%f\\n' prints event, name and path relative to the root" {
        D=$T/in
        mkdir -p "$D/sub"
        start_ferry "$T/out" watch -r --events close_write --format '%e|%n|%f\n' "$D"
        probe_until_seen "$D" "$T/out"

        printf 'hello' >"$D/sub/file.txt"
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_lines "$T/out" "$T/got"
        printf 'close_write|file.txt|sub/file.txt\n' >"$T/want"
        assert_same_file "$T/want" "$T/got"
}

@test "output: --format %s %r %p %% and \\t in ready mode" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch --ready --format '%e\t%s\t%r\t%p\t%%\n' "$D"
        probe_until_seen "$D" "$T/out"

        printf 'hello' >"$D/five"
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_lines "$T/out" "$T/got"
        printf 'ready\t5\t%s\t%s\t%%\n' "$D" "$D/five" >"$T/want"
        assert_same_file "$T/want" "$T/got"
}

@test "output: --format %o and \\0 for a move within the tree" {
        D=$T/in
        mkdir -p "$D/sub"
        printf x >"$D/a"
        start_ferry "$T/out" watch -r --events moved_to --format '%o>%p\0' "$D"
        probe_until_seen "$D" "$T/out" rename

        mv -- "$D/a" "$D/sub/b"
        end_probe "$D" "$T/out" rename
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        printf '%s>%s\0' "$D/a" "$D/sub/b" >"$T/want"
        assert_same_file "$T/want" "$T/got"
}

@test "output: text mode escapes newline, tab, backslash and non-ASCII bytes, one event per line" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch --events close_write "$D"
        probe_until_seen "$D" "$T/out"

        for name in $'new\nline' $'tab\there' 'back\slash' $'bad\xff' $'caf\xc3\xa9' 'sp ace' $'del\x7f' $'bell\a'; do
                printf x >"$D/$name"
        done
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_lines "$T/out" "$T/lines"
        # \xHH: either case of hex digit is accepted; compare in lower case.
        sed -E 's/\\x([0-9A-Fa-f]{2})/\\x\L\1/g' "$T/lines" | sort >"$T/got"
        {
                printf 'close_write %s/%s\n' "$D" 'new\nline' "$D" 'tab\there' "$D" 'back\\slash' \
                        "$D" 'bad\xff' "$D" 'caf\xc3\xa9' "$D" 'sp ace' "$D" 'del\x7f' "$D" 'bell\x07'
        } | sort >"$T/want"
        assert_same_file "$T/want" "$T/got"
}

@test "output: -0 in event mode prints the raw path and a NUL, nothing else" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch -0 --events close_write "$D"
        probe_until_seen "$D" "$T/out"

        printf x >"$D/plain"
        printf x >"$D/"$'a\nb'
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$D/plain" "$D/"$'a\nb' >"$T/want"
        assert_same_file "$T/want" "$T/got"
}

@test "output: --json lines: dir true for directories, from for moves within the tree, size for ready" {
        D=$T/in
        mkdir -p "$D/sub"
        start_ferry "$T/out" watch -r --json "$D"
        probe_until_seen "$D" "$T/out"

        mkdir "$D/newdir"
        printf 'abc' >"$D/sub/f"
        mv -- "$D/sub/f" "$D/g"
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_lines "$T/out" "$T/events"
        python3 - "$T/events" "$D" <<'EOF'
import json, sys
d = sys.argv[2]
objs = [json.loads(l) for l in open(sys.argv[1], 'rb')]
for o in objs:
    assert o['root'] == d, o
    assert 'size' not in o, o          # size only for ready events
def find(event, path):
    return [o for o in objs if o['event'] == event and o['path'].rstrip('/') == path]
mk = find('create', d + '/newdir')
assert len(mk) == 1 and mk[0].get('dir') is True, ('mkdir newdir', objs)
f = find('create', d + '/sub/f')
assert len(f) == 1 and 'dir' not in f[0], ('create sub/f', objs)
assert len(find('close_write', d + '/sub/f')) == 1, ('close_write sub/f', objs)
mt = find('moved_to', d + '/g')
assert len(mt) == 1 and mt[0].get('from') == d + '/sub/f', ('moved_to g', objs)
mf = find('moved_from', d + '/sub/f')
assert len(mf) == 1, ('moved_from sub/f', objs)
EOF
        # ready events carry the size.
        start_ferry "$T/out2" watch --ready --json "$D"
        probe_until_seen "$D" "$T/out2"
        printf '0123456789' >"$D/ten"
        end_probe "$D" "$T/out2"
        stop_ferry "$T/out2"
        strip_probes_lines "$T/out2" "$T/ready"
        python3 - "$T/ready" "$D" <<'EOF'
import json, sys
d = sys.argv[2]
objs = [json.loads(l) for l in open(sys.argv[1], 'rb')]
assert objs == [{'event': 'ready', 'path': d + '/ten', 'root': d, 'size': 10}], objs
EOF
}

@test "output: --count 2 stops after 2 events with exit 0" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch --events create --count 2 "$D"
        pid=$FERRY_PID
        wait_watches "$pid" 1 10

        : >"$D/a"
        : >"$D/b"
        : >"$D/c"
        wait_exit "$pid" 30
        FERRY_PID=
        ((EXIT_RC == 0)) || { echo "exit $EXIT_RC, expected 0: $(cat -v "$T/out.err")" >&2; return 1; }
        printf 'create %s\n' "$D/a" "$D/b" >"$T/want"
        assert_same_file "$T/want" "$T/out"
}

@test "output: --ready --count 2 -0 stops after 2 ready files with exit 0" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch --ready -0 --count 2 "$D"
        pid=$FERRY_PID
        wait_watches "$pid" 1 10

        printf 1 >"$D/a"
        printf 2 >"$D/b"
        printf 3 >"$D/c"
        wait_exit "$pid" 30
        FERRY_PID=
        ((EXIT_RC == 0)) || { echo "exit $EXIT_RC, expected 0: $(cat -v "$T/out.err")" >&2; return 1; }
        [[ $(count_nul "$T/out") -eq 2 ]] || { echo "expected 2 records:" >&2; show_nul "$T/out" >&2; return 1; }
        { grep -zavxF -e "$D/a" -e "$D/b" -e "$D/c" "$T/out" || true; } >"$T/other"
        [[ ! -s $T/other ]] || { echo "unexpected records:" >&2; show_nul "$T/other" >&2; return 1; }
        [[ $(sort -zu "$T/out" | tr -cd '\0' | wc -c) -eq 2 ]]
}

@test "output: --timeout 0.3s --count 5 with no activity exits 3; --timeout alone exits 0" {
        mkdir "$T/in"
        start=$(now_us)
        run --separate-stderr timeout 30 "$FERRY" watch --timeout 0.3s --count 5 "$T/in"
        took=$(elapsed_ms "$start")
        assert_status 3
        [[ -z $output ]]
        ((took >= 250 && took < 10000 * SLOW)) || { echo "took $took ms" >&2; return 1; }

        start=$(now_us)
        run --separate-stderr timeout 30 "$FERRY" watch --timeout 0.3s "$T/in"
        took=$(elapsed_ms "$start")
        assert_status 0
        [[ -z $output ]]
        ((took >= 250 && took < 10000 * SLOW)) || { echo "took $took ms" >&2; return 1; }
}

@test "output: --include '*.csv' --exclude 'skip*' (names, at any depth)" {
        D=$T/in
        mkdir -p "$D/sub"
        start_ferry "$T/out" watch -r --events close_write --include '*.csv' --exclude 'skip*' "$D"
        wait_watches "$FERRY_PID" 2 10

        for f in a.csv b.txt skip1.csv sub/c.csv sub/skip2.csv sub/d.CSV csv sub/e.csv.txt; do
                printf x >"$D/$f"
        done
        printf x >"$D/zz-end.csv"
        wait_line "$T/out" "close_write $D/zz-end.csv" 30
        stop_ferry "$T/out"

        printf 'close_write %s\n' "$D/a.csv" "$D/sub/c.csv" "$D/zz-end.csv" | sort >"$T/want"
        sort "$T/out" >"$T/got"
        assert_same_file "$T/want" "$T/got"
}

@test "output: --include with '/' matches the path relative to the root, '*' crossing '/'" {
        D=$T/in
        mkdir -p "$D/sub/deep" "$D/other/sub"
        start_ferry "$T/out" watch -r --events close_write --include 'sub/*.csv' "$D"
        wait_watches "$FERRY_PID" 5 10

        for f in a.csv sub/c.csv sub/deep/d.csv other/sub/e.csv sub/f.txt; do
                printf x >"$D/$f"
        done
        printf x >"$D/sub/zz-end.csv"
        wait_line "$T/out" "close_write $D/sub/zz-end.csv" 30
        stop_ferry "$T/out"

        printf 'close_write %s\n' "$D/sub/c.csv" "$D/sub/deep/d.csv" "$D/sub/zz-end.csv" | sort >"$T/want"
        sort "$T/out" >"$T/got"
        assert_same_file "$T/want" "$T/got"
}

@test "output: --events create,delete reports only those, directories with a trailing /" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch --events create,delete "$D"
        probe_until_seen "$D" "$T/out"

        printf x >"$D/f"
        printf y >>"$D/f"
        rm -- "$D/f"
        mkdir "$D/dir"
        rmdir "$D/dir"
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_lines "$T/out" "$T/got"
        printf 'create %s\ndelete %s\ncreate %s/\ndelete %s/\n' "$D/f" "$D/f" "$D/dir" "$D/dir" >"$T/want"
        assert_same_file "$T/want" "$T/got"
}

@test "output: --existing --ready reports files present at start once, temp names never" {
        D=$T/in
        mkdir -p "$D/sub"
        printf 1 >"$D/e1"
        printf 2 >"$D/sub/e2"
        printf 3 >"$D/.hidden"
        printf 4 >"$D/e3.part"
        start_ferry "$T/out" watch -r --ready --existing -0 "$D"
        probe_until_seen "$D" "$T/out"
        printf 5 >"$D/later"
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$D/e1" "$D/sub/e2" "$D/later" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "output: without --existing, files present at start are not reported" {
        D=$T/in
        mkdir -p "$D/sub"
        printf 1 >"$D/e1"
        printf 2 >"$D/sub/e2"
        start_ferry "$T/out" watch -r --ready -0 "$D"
        probe_until_seen "$D" "$T/out"
        printf 5 >"$D/later"
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$D/later" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "output: --existing in event mode reports present files as create" {
        D=$T/in
        mkdir -p "$D/sub"
        printf 1 >"$D/e1"
        printf 2 >"$D/sub/e2"
        start_ferry "$T/out" watch -r --existing --events create "$D"
        probe_until_seen "$D" "$T/out"
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        # Whether the directory itself is reported is not specified: leave lines ending in /.
        strip_probes_lines "$T/out" "$T/lines"
        { grep -av '/$' "$T/lines" || true; } | sort >"$T/got"
        printf 'create %s\n' "$D/e1" "$D/sub/e2" | sort >"$T/want"
        assert_same_file "$T/want" "$T/got"
}

@test "output: paths start with DIR as given: 'in/' gives in/x (no doubled slash), './in' gives ./in/x" {
        mkdir "$T/in"
        cd "$T"
        start_ferry "$T/out" watch --events close_write in/
        probe_until_seen in "$T/out"
        printf x >in/x
        end_probe in "$T/out"
        stop_ferry "$T/out"
        strip_probes_lines "$T/out" "$T/got"
        printf 'close_write in/x\n' >"$T/want"
        assert_same_file "$T/want" "$T/got"
        if grep -aq '//' "$T/out"; then
                echo "doubled slash in output:" >&2
                cat -v "$T/out" >&2
                return 1
        fi

        start_ferry "$T/out2" watch --events close_write ./in
        probe_until_seen in "$T/out2"
        printf x >in/y
        end_probe in "$T/out2"
        stop_ferry "$T/out2"
        strip_probes_lines "$T/out2" "$T/got2"
        printf 'close_write ./in/y\n' >"$T/want2"
        assert_same_file "$T/want2" "$T/got2"
}
