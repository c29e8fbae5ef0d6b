#!/usr/bin/env bats
# tree_moves.bats: the watched tree changes shape: the root goes away and comes back, subtrees
# move in, out and around, files arrive and leave by rename. ferry follows the tree as it is.

load helpers

# line_index FILE LINE: the 1-based number of the first line equal to LINE, or 0.
line_index() {
        local n
        n=$(grep -anxF -- "$2" "$1" | head -1 | cut -d: -f1)
        echo "${n:-0}"
}

# root_line FILE EVENT DIR: the number of the first "EVENT DIR" or "EVENT DIR/" line, or 0.
root_line() {
        local n
        n=$(grep -anxF -e "$2 $3" -e "$2 $3/" -- "$1" | head -1 | cut -d: -f1)
        echo "${n:-0}"
}
has_root_line() { (($(root_line "$@") > 0)); }

@test "tree: root removed and recreated with --follow: root_gone, root_back, later files reported" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch -r --follow "$D"
        probe_until_seen "$D" "$T/out"

        rm -rf -- "$D"
        wait_for has_root_line "$T/out" root_gone "$D" 30
        mkdir -p "$D/sub/deeper"
        wait_for has_root_line "$T/out" root_back "$D" 30
        printf 'hello' >"$D/after"
        printf 'hello' >"$D/sub/deeper/nested"
        wait_line "$T/out" "close_write $D/after" 30
        wait_line "$T/out" "close_write $D/sub/deeper/nested" 30
        stop_ferry "$T/out"

        gone=$(root_line "$T/out" root_gone "$D")
        back=$(root_line "$T/out" root_back "$D")
        after=$(line_index "$T/out" "close_write $D/after")
        ((gone < back && back < after)) || {
                echo "order: root_gone at line $gone, root_back at $back, close_write after at $after" >&2
                cat -v "$T/out" >&2
                return 1
        }
}

@test "tree: root moved away and back with --follow: nothing reported from the moved-away copy" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch -r --follow --events close_write "$D"
        probe_until_seen "$D" "$T/out"

        mv -- "$D" "$T/away"
        wait_for has_root_line "$T/out" root_gone "$D" 30
        printf x >"$T/away/while-away"
        mv -- "$T/away" "$D"
        wait_for has_root_line "$T/out" root_back "$D" 30
        printf x >"$D/back"
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_lines "$T/out" "$T/got"
        grep -av -e '^root_gone ' -e '^root_back ' -e '^rescan' "$T/got" >"$T/files" || true
        printf 'close_write %s\n' "$D/back" >"$T/want"
        assert_same_file "$T/want" "$T/files"
}

@test "tree: root removed without --follow: ferry exits 4" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch -r "$D"
        probe_until_seen "$D" "$T/out"
        pid=$FERRY_PID

        rm -rf -- "$D"
        wait_exit "$pid" 30
        FERRY_PID=
        ((EXIT_RC == 4)) || { echo "exit $EXIT_RC, expected 4; stderr: $(cat -v "$T/out.err")" >&2; return 1; }
}

@test "tree: root moved away without --follow: ferry exits 4" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch "$D"
        probe_until_seen "$D" "$T/out"
        pid=$FERRY_PID

        mv -- "$D" "$T/away"
        wait_exit "$pid" 30
        FERRY_PID=
        ((EXIT_RC == 4)) || { echo "exit $EXIT_RC, expected 4; stderr: $(cat -v "$T/out.err")" >&2; return 1; }
}

@test "tree: two roots, one removed: ferry keeps watching the other; both removed: exit 4" {
        mkdir "$T/one" "$T/two"
        start_ferry "$T/out" watch --events close_write "$T/one" "$T/two"
        probe_until_seen "$T/one" "$T/out"
        pid=$FERRY_PID

        rm -rf -- "$T/one"
        wait_for has_root_line "$T/out" root_gone "$T/one" 30
        printf x >"$T/two/still"
        wait_line "$T/out" "close_write $T/two/still" 30
        proc_alive "$pid"

        rm -rf -- "$T/two"
        wait_exit "$pid" 30
        FERRY_PID=
        ((EXIT_RC == 4)) || { echo "exit $EXIT_RC, expected 4" >&2; return 1; }
}

@test "tree: subtree moved in: files created later in its subdirectories are reported under the new path" {
        D=$T/in
        mkdir -p "$D" "$T/outside/sub/a/b"
        printf old >"$T/outside/sub/old1"
        printf old >"$T/outside/sub/a/b/old3"
        start_ferry "$T/out" watch -r --ready -0 "$D"
        probe_until_seen "$D" "$T/out"

        mv -- "$T/outside/sub" "$D/sub"
        printf new >"$D/sub/new-top"
        printf new >"$D/sub/a/new-a"
        printf new >"$D/sub/a/b/new-b"
        mkdir "$D/sub/a/b/c"
        printf new >"$D/sub/a/b/c/new-c"

        wait_for has_text "$T/out" "$D/sub/a/b/c/new-c" 30 || true
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        # Files that were inside the subtree when it moved are checked by the next test.
        strip_probes_nul "$T/out" "$T/all"
        { grep -zav -e '/old[0-9]$' "$T/all" || true; } >"$T/got"
        printf '%s\0' "$D/sub/new-top" "$D/sub/a/new-a" "$D/sub/a/b/new-b" "$D/sub/a/b/c/new-c" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "tree: files inside a subtree moved in are reported ready once, under the new path" {
        D=$T/in
        mkdir -p "$D" "$T/outside/sub/a/b"
        printf old >"$T/outside/sub/old1"
        printf old >"$T/outside/sub/a/old2"
        printf old >"$T/outside/sub/a/b/old3"
        start_ferry "$T/out" watch -r --ready -0 "$D"
        probe_until_seen "$D" "$T/out"

        mv -- "$T/outside/sub" "$D/sub"

        wait_for has_records_besides_probes "$T/out" 3 30 || true
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$D/sub/old1" "$D/sub/a/old2" "$D/sub/a/b/old3" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "tree: subtree moved out: files created in it later are not reported; a new dir of the same name is" {
        D=$T/in
        mkdir -p "$D/sub/a/b" "$T/outside"
        start_ferry "$T/out" watch -r --ready -0 "$D"
        probe_until_seen "$D" "$T/out"

        mv -- "$D/sub" "$T/outside/sub"
        printf late >"$T/outside/sub/late-top"
        printf late >"$T/outside/sub/a/b/late-deep"
        # The same names again inside the tree: new directories, to be watched afresh.
        mkdir -p "$D/sub/a/b"
        printf fresh >"$D/sub/a/b/fresh"
        printf late >"$T/outside/sub/a/late-mid"

        wait_for has_text "$T/out" "$D/sub/a/b/fresh" 30 || true
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$D/sub/a/b/fresh" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "tree: directory renamed within the tree: later files are reported under the new name" {
        D=$T/in
        mkdir -p "$D/olddir/inner"
        start_ferry "$T/out" watch -r --ready -0 "$D"
        probe_until_seen "$D" "$T/out"

        mv -- "$D/olddir" "$D/newdir"
        printf x >"$D/newdir/g"
        printf x >"$D/newdir/inner/f"

        wait_for has_records_besides_probes "$T/out" 2 30 || true
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$D/newdir/g" "$D/newdir/inner/f" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "tree: a file moved within the tree prints moved_from OLD then moved_to NEW" {
        D=$T/in
        mkdir -p "$D/sub"
        printf x >"$D/a"
        start_ferry "$T/out" watch -r "$D"
        probe_until_seen "$D" "$T/out"

        mv -- "$D/a" "$D/sub/b"
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_lines "$T/out" "$T/got"
        printf 'moved_from %s\nmoved_to %s\n' "$D/a" "$D/sub/b" >"$T/want"
        assert_same_file "$T/want" "$T/got"
}

@test "tree: a file renamed in from outside is ready under --ready=rename; a file written in place is not" {
        D=$T/in
        mkdir -p "$D" "$T/outside"
        start_ferry "$T/out" watch --ready=rename -0 "$D"
        probe_until_seen "$D" "$T/out" rename

        printf 'full' >"$T/outside/f1"
        mv -- "$T/outside/f1" "$D/f1"
        printf 'direct' >"$D/direct"
        printf 'part' >"$D/x.part"
        mv -- "$D/x.part" "$D/x"
        printf 'tmp' >"$T/outside/.hidden"
        mv -- "$T/outside/.hidden" "$D/.hidden"

        wait_for has_records_besides_probes "$T/out" 2 30 || true
        end_probe "$D" "$T/out" rename
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$D/f1" "$D/x" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "tree: a file renamed in from outside is ready under --ready (auto), as are closed and renamed-in-place files" {
        D=$T/in
        mkdir -p "$D" "$T/outside"
        start_ferry "$T/out" watch --ready -0 "$D"
        probe_until_seen "$D" "$T/out"

        printf 'full' >"$T/outside/f1"
        mv -- "$T/outside/f1" "$D/f1"
        printf 'direct' >"$D/direct"
        printf 'part' >"$D/x.part"
        mv -- "$D/x.part" "$D/x"

        wait_for has_records_besides_probes "$T/out" 3 30 || true
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$D/f1" "$D/direct" "$D/x" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "tree: a file renamed out of the folder: no further ready (rename policy)" {
        D=$T/in
        mkdir -p "$D" "$T/outside"
        start_ferry "$T/out" watch --ready=rename -0 "$D"
        probe_until_seen "$D" "$T/out" rename

        printf 'part' >"$D/x.part"
        mv -- "$D/x.part" "$D/x"
        wait_for has_text "$T/out" "$D/x" 30
        mv -- "$D/x" "$T/outside/x"
        printf 'more' >>"$T/outside/x"
        end_probe "$D" "$T/out" rename
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$D/x" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "tree: a file renamed out of the folder shows moved_from only, in event mode" {
        D=$T/in
        mkdir -p "$D" "$T/outside"
        printf y >"$D/y"
        start_ferry "$T/out" watch "$D"
        probe_until_seen "$D" "$T/out"

        mv -- "$D/y" "$T/outside/y"
        printf more >>"$T/outside/y"
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_lines "$T/out" "$T/got"
        printf 'moved_from %s\n' "$D/y" >"$T/want"
        assert_same_file "$T/want" "$T/got"
}
