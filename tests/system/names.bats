#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted scripts and names are meant literally
# names.bats: file names are bytes. Spaces, newlines, shell syntax, leading dashes, invalid
# UTF-8 and 255-byte names come out exactly as written, and no name is ever run by a shell.

load helpers

# make_names: fills NAMES with the hostile names.
make_names() {
        local long long_utf8 long_bad
        long=$(printf 'L%.0s' {1..255})
        long_utf8=$(printf '\xc3\xa9%.0s' {1..127})x   # 127 x 2 bytes + 1 = 255 bytes
        long_bad=$(printf '\xff%.0s' {1..255})
        NAMES=(
                'with space'
                $'new\nline'
                $'\nleading-newline'
                '$(touch x)'
                '`touch x`'
                '-n'
                '--'
                $'bad\xff'
                $'tab\there'
                'back\slash'
                $'caf\xc3\xa9'
                "quote'and\"double"
                '*'
                "$long"
                "$long_utf8"
                "$long_bad"
        )
}

# write_names DIR: writes "data\n" into DIR/NAME for every name.
write_names() {
        local name
        for name in "${NAMES[@]}"; do
                printf 'data\n' >"$1/$name"
        done
}

# expected_paths DIR OUT: DIR/NAME for every name, as NUL records.
expected_paths() {
        local name
        for name in "${NAMES[@]}"; do
                printf '%s/%s\0' "$1" "$name"
        done >"$2"
}

# assert_no_x: no name was interpreted by a shell (which would have created a file "x").
assert_no_x() {
        local found
        found=$(find "$T" "$BATS_TEST_DIRNAME" -name x -print)
        [[ -z $found ]] || {
                echo "a file x was created: a name went through a shell: $found" >&2
                return 1
        }
}

@test "names: -0 --ready prints every hostile name byte-exactly, once" {
        make_names
        D=$T/in
        mkdir "$D"
        cd "$T"
        start_ferry "$T/out" watch --ready -0 "$D"
        probe_until_seen "$D" "$T/out"

        write_names "$D"

        wait_for has_records_besides_probes "$T/out" "${#NAMES[@]}" 30 || true
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        expected_paths "$D" "$T/want"
        assert_same_nul_set "$T/want" "$T/got"
        assert_no_x
}

@test "names: --json ready events decode (path_base64 when present, else path) to the exact names" {
        make_names
        D=$T/in
        mkdir "$D"
        cd "$T"
        start_ferry "$T/out" watch --ready --json "$D"
        probe_until_seen "$D" "$T/out"

        write_names "$D"

        wait_for has_lines_besides_probes "$T/out" "${#NAMES[@]}" 30 || true
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_lines "$T/out" "$T/events"
        json_paths "$T/events" ready "$T/got"
        expected_paths "$D" "$T/want"
        assert_same_nul_set "$T/want" "$T/got"
        assert_no_x

        # The invalid UTF-8 name: "path" holds U+FFFD for the bad byte and path_base64 the
        # bytes; every ready event says size 5; newlines inside names never break a line.
        python3 - "$T/events" "$D" <<'EOF'
import base64, json, sys
d = sys.argv[2]
lines = open(sys.argv[1], 'rb').read().split(b'\n')[:-1]
objs = [json.loads(l) for l in lines]
ready = [o for o in objs if o['event'] == 'ready']
for o in ready:
    assert o['size'] == 5, o
    assert o['root'] == d, o
bad = [o for o in ready if o.get('path_base64') and base64.b64decode(o['path_base64']) == (d + '/bad').encode() + b'\xff']
assert len(bad) == 1, ready
assert bad[0]['path'] == d + '/bad\ufffd', bad[0]
nl = [o for o in ready if o['path'] == d + '/new\nline']
assert len(nl) == 1, 'the name with a newline is not one event with "path" holding the newline'
EOF
}

@test "names: ferry wait -0 on each hostile name prints it byte-exactly" {
        make_names
        D=$T/in
        mkdir "$D"
        cd "$T"
        write_names "$D"
        local name rc
        : >"$T/got"
        for name in "${NAMES[@]}"; do
                rc=0
                timeout 30 "$FERRY" wait -0 --timeout 10s "$D/$name" >>"$T/got" 2>"$T/err" || rc=$?
                if ((rc != 0)); then
                        printf 'ferry wait on %q exited %d: ' "$D/$name" "$rc" >&2
                        cat -v "$T/err" >&2
                        return 1
                fi
        done
        expected_paths "$D" "$T/want"
        assert_same_file "$T/want" "$T/got"
        assert_no_x
}
