#!/usr/bin/env bats
# share_marker_race.bats: smbnetfs creates every file, closes it empty and reopens it to
# write it, so the file server closes a done-marker once while it is still empty. An empty
# marker checks nothing; one closed empty and then written must still be checked, or a
# writer that died half-way is handed out (found by share_matrix.bats: smbnetfs, killed,
# done-file). The same sequence of closes, made locally.

load helpers

# watch_cut_file: ferry watch --ready=done-file on $T/in, $T/whole (100,000 random bytes) and
# $T/in/cut, its first 40,000 bytes: a writer that died half-way
watch_cut_file() {
        mkdir "$T/in"
        start_ferry "$T/out" watch --ready=done-file --json "$T/in"
        wait_watches "$FERRY_PID" 1 30
        head -c 100000 /dev/urandom >"$T/whole"
        head -c 40000 "$T/whole" >"$T/in/cut"
}

# whole_marker: the marker of $T/whole (its size and SHA-256), on stdout
whole_marker() {
        printf 'ferry-marker 1\nsize 100000\nsha256 %s\n' "$(sha256sum <"$T/whole" | cut -c1-64)"
}

@test "share marker race: a marker closed empty, then written, is checked: a cut-off file is reported, not ready" {
        watch_cut_file
        # as smbnetfs does it: create and close the marker empty, reopen it and write it
        : >"$T/in/cut.done"
        whole_marker >"$T/in/cut.done"
        wait_for has_text "$T/out" '"path":"'"$T/in/cut"'"' 30
        # a file with a good marker afterwards: everything before it has been decided
        "$FERRY" put --marker --quiet "$T/whole" "$T/in/whole"
        wait_for has_text "$T/out" "\"path\":\"$T/in/whole\"" 30
        stop_ferry "$T/out"
        # ready: the file cut off never; the whole one, so the pattern is right
        grep '"event":"ready"' "$T/out" | grep -qF "\"path\":\"$T/in/whole\""
        # shellcheck disable=SC2016 # expanded by that bash
        run ! bash -c 'grep "\"event\":\"ready\"" "$1" | grep -qF "\"path\":\"$2\""' _ "$T/out" "$T/in/cut"
        grep '"event":"error"' "$T/out" | grep -qF "\"path\":\"$T/in/cut\""
}

@test "share marker race: a marker closed empty twice and written 1.5 s later (a busy client) is checked" {
        watch_cut_file
        # closed empty, closed empty again (a close while it waits does not end the wait),
        # and written only after more than a second (smbnetfs's reopen on a loaded machine)
        : >"$T/in/cut.done"
        sleep 0.2
        : >>"$T/in/cut.done"
        sleep 1.3
        whole_marker >"$T/in/cut.done"
        wait_for has_text "$T/out" '"path":"'"$T/in/cut"'"' 30
        stop_ferry "$T/out"
        grep '"event":"error"' "$T/out" | grep -qF "\"path\":\"$T/in/cut\""
        refute grep -qF '"event":"ready"' "$T/out"
}

@test "share marker race: an empty marker that stays empty still makes its file ready, once" {
        mkdir "$T/in"
        start_ferry "$T/out" watch --ready=done-file -0 "$T/in"
        wait_watches "$FERRY_PID" 1 30
        printf 'data\n' >"$T/in/f"
        : >"$T/in/f.done"
        wait_nul_records "$T/out" 1 30
        stop_ferry "$T/out"
        printf '%s\0' "$T/in/f" >"$T/want"
        assert_same_nul_set "$T/want" "$T/out"
}
