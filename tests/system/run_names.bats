#!/usr/bin/env bats
# shellcheck disable=SC2016,SC1083 # single-quoted scripts and names are meant literally
# run_names.bats: `ferry run` passes file names to the handler as bytes, one argument each,
# never through a shell: shell syntax, newlines, leading dashes, invalid UTF-8, braces and
# 255-byte names arrive exactly, and end in the done folder under the same bytes.

load helpers

# make_names: fills NAMES with the hostile names.
make_names() {
        local long
        long=$(printf 'L%.0s' {1..255})
        NAMES=(
                '$(touch PWNED)'
                '`touch PWNED`'
                '; rm -rf x'
                '; touch PWNED'
                '| touch PWNED'
                $'new\nline'
                $'\nleading-newline'
                '-n'
                '--help'
                '-rf x'
                $'bad\xffbyte'
                $'\xff'
                $'tab\there'
                'with space'
                'back\slash'
                "quote'and\"double"
                '*'
                'x{name}y'
                '{}'
                $'caf\xc3\xa9'
                "$long"
        )
}

# write_names DIR: DIR/NAME holds NAME followed by a NUL, for every name.
write_names() {
        local name
        for name in "${NAMES[@]}"; do
                printf '%s\0' "$name" >"$1/$name"
        done
}

# names_nul [PREFIX]: PREFIX NAME for every name, as NUL records.
names_nul() {
        local name
        for name in "${NAMES[@]}"; do
                printf '%s%s\0' "${1:-}" "$name"
        done
}

# The handler: $1 the log prefix, $2 {name}, $3 {}. It records its argument count, {name},
# $FERRY_NAME, $FERRY_ORIGINAL_PATH and the content of {}, and whether {} ends in /{name} and
# equals $FERRY_PATH.
handler() {
        make_handler "$T/h.sh" \
                'printf "%s\n" "$#" >>"$1.argc"' \
                'printf "%s\0" "$2" >>"$1.name"' \
                'printf "%s\0" "$FERRY_NAME" >>"$1.env"' \
                'printf "%s\0" "$FERRY_ORIGINAL_PATH" >>"$1.original"' \
                'cat -- "$3" >>"$1.content"' \
                '[ "${3##*/}" = "$2" ] || printf "%s\0" "$3" >>"$1.mismatch"' \
                '[ "$FERRY_PATH" = "$3" ] || printf "%s\0" "$3" >>"$1.mismatch"'
}

# assert_no_shell: no name ran in a shell: no PWNED file, the canary x is still there.
assert_no_shell() {
        local found
        found=$(find "$T" "$BATS_TEST_DIRNAME" / -xdev -maxdepth 1 -name 'PWNED*' -print 2>/dev/null)
        found+=$(find "$T" -name 'PWNED*' -print)
        [[ -z $found ]] || {
                echo "a name went through a shell: $found" >&2
                return 1
        }
        [[ -f $T/x ]] || {
                echo "the canary $T/x is gone: a name ran 'rm -rf x' in a shell" >&2
                return 1
        }
}

@test "run: hostile names reach the handler byte-exactly as one argument and end in done" {
        make_names
        handler
        D=$T/in
        mkdir -p "$D/sub"
        printf 'canary\n' >"$T/x"
        cd "$T"
        # Present at start, in DIR; written while running, in DIR/sub (-r).
        write_names "$D"
        start_ferry "$T/ferry" run -r -j 2 "$D" -- "$T/h.sh" "$T/rec" {name} {}
        wait_run_started "$T/ferry"
        write_names "$D/sub"

        n=$((2 * ${#NAMES[@]}))
        wait_files "$D/.ferry/done" "$n" 60
        stop_ferry "$T/ferry"

        { names_nul; names_nul; } >"$T/want.names"
        { names_nul "$D/"; names_nul "$D/sub/"; } >"$T/want.original"
        { names_nul; names_nul sub/; } >"$T/want.done"
        assert_same_nul_set "$T/want.names" "$T/rec.name"
        assert_same_nul_set "$T/want.names" "$T/rec.env"
        assert_same_nul_set "$T/want.original" "$T/rec.original"
        # Each file's content is its own name: {} named the file that was written.
        assert_same_nul_set "$T/want.names" "$T/rec.content"
        [[ ! -e $T/rec.mismatch ]] || {
                echo "{} does not end in /{name}, or differs from \$FERRY_PATH, for:" >&2
                show_nul "$T/rec.mismatch" >&2
                return 1
        }
        # Three arguments each time: the log prefix, {name}, {}.
        [[ $(sort -u "$T/rec.argc") == 3 ]] || {
                echo "argument counts seen: $(sort "$T/rec.argc" | uniq -c | tr '\n' ' ')" >&2
                return 1
        }
        files_nul "$D/.ferry/done" "$T/done"
        assert_same_nul_set "$T/want.done" "$T/done"
        assert_queue_empty "$D"
        assert_no_claims "$D"
        assert_no_shell
}

@test "run: the text log escapes hostile names, in the path and in the message: one line per record" {
        make_names
        D=$T/in
        mkdir "$D"
        write_names "$D"
        make_handler "$T/fail.sh" 'case "${1##*/}" in fail*) exit 1;; esac'
        printf 'x\n' >"$D/"$'fail\nme'
        start_ferry "$T/ferry" run -j 2 --retries 0 "$D" -- "$T/fail.sh" {}
        wait_files "$D/.ferry/done" "${#NAMES[@]}" 60
        wait_for file_exists "$D/.ferry/failed/"$'fail\nme'".ferry-error" 30
        stop_ferry "$T/ferry"

        # A newline in a name is escaped, never a line break: every line is a record.
        stray=$(grep -avc '^ferry: ' "$T/ferry.err" || true)
        ((stray == 0)) || {
                echo "ferry's stderr has $stray lines not starting with 'ferry: ':" >&2
                grep -av '^ferry: ' "$T/ferry.err" | cat -A >&2
                return 1
        }
        [[ $(grep -ac '^ferry: done \[run\] ' "$T/ferry.err") -eq ${#NAMES[@]} ]]
        assert_log_has "$T/ferry" "done [run] $D/new\\nline: done in "
        assert_log_has "$T/ferry" "done [run] $D/bad\\xffbyte: done in "
        assert_log_has "$T/ferry" "done [run] $D/back\\\\slash: done in "
        assert_log_has "$T/ferry" "failed [run] $D/fail\\nme: failed (exit status 1)"
}

@test "run: --log-format json gives the exact path bytes of each hostile name (path_base64 when not UTF-8)" {
        make_names
        D=$T/in
        mkdir "$D"
        cd "$T"
        printf 'canary\n' >"$T/x"
        write_names "$D"
        start_ferry "$T/ferry" run -j 2 --log-format json "$D" -- true {}
        wait_files "$D/.ferry/done" "${#NAMES[@]}" 60
        stop_ferry "$T/ferry"

        python3 - "$T/ferry.err" "$T/got" <<'EOF'
import base64, json, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src, 'rb') as f, open(dst, 'wb') as out:
    for number, raw in enumerate(f, 1):
        obj = json.loads(raw)
        if not isinstance(obj, dict) or 'event' not in obj or 'message' not in obj:
            sys.exit(f'line {number}: not a log object: {raw!r}')
        if obj['event'] == 'started' and not (isinstance(obj.get('pid'), int) and obj['pid'] > 0):
            sys.exit(f'line {number}: started event without a pid: {raw!r}')
        if obj['event'] != 'done':
            continue
        if obj.get('rule') != 'run':
            sys.exit(f'line {number}: rule is not "run": {raw!r}')
        if not isinstance(obj.get('duration'), (int, float)):
            sys.exit(f'line {number}: done event without a duration: {raw!r}')
        if (obj.get('attempt'), obj.get('exit_code'), obj.get('signal')) != (1, 0, 0):
            sys.exit(f'line {number}: done event without attempt 1, exit_code 0, signal 0: {raw!r}')
        if 'path_base64' in obj:
            path = base64.b64decode(obj['path_base64'], validate=True)
            try:
                path.decode('utf-8')
                sys.exit(f'line {number}: path_base64 for a UTF-8 path: {raw!r}')
            except UnicodeDecodeError:
                pass
        else:
            path = obj['path'].encode('utf-8')
        out.write(path + b'\0')
EOF
        names_nul "$D/" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
        assert_no_shell
}
