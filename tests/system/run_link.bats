#!/usr/bin/env bats
# run_link.bats: files published by a link, whose only event is IN_CREATE, are ready as soon
# as they appear complete: a hard link from a staging folder (a common atomic publish), and an
# O_TMPFILE linked in after it was written (at once when closed first, after auto's quiet time
# when its writer still holds it: no close of that name is ever reported).

load helpers

# link_tmpfile DIR NAME TEXT HOLD: writes TEXT to an O_TMPFILE in DIR, links it in as NAME
# (through /proc/self/fd, AT_SYMLINK_FOLLOW: no privilege needed), and closes it HOLD seconds
# later.
link_tmpfile() {
        python3 - "$@" <<'PY'
import ctypes, os, sys, time
folder, name, text, hold = sys.argv[1], sys.argv[2], sys.argv[3].encode(), float(sys.argv[4])
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o644)
os.write(fd, text)
target = os.path.join(folder, name).encode()
if libc.linkat(-100, b"/proc/self/fd/%d" % fd, -100, target, 0x400) != 0:
    sys.exit("linkat: " + os.strerror(ctypes.get_errno()))
time.sleep(hold)
os.close(fd)
PY
}

@test "run: a file hard-linked in from a staging folder is handled once, at once" {
        mkdir "$T/in" "$T/stage"
        printf 'published\n' >"$T/stage/report.csv"
        make_handler "$T/h.sh" 'printf "%s %s\0" "$FERRY_NAME" "$(cat "$2")" >>"$1"'
        start_ferry "$T/run" run "$T/in" -- "$T/h.sh" "$T/handled" {}
        wait_run_started "$T/run"
        ln "$T/stage/report.csv" "$T/in/report.csv"
        # Well before auto's 10 s quiet time, which was the only way it could come out.
        wait_nul_records "$T/handled" 1 5
        stop_ferry "$T/run"
        printf 'report.csv published\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
}

@test "watch --ready: a hard link, and an O_TMPFILE linked in and closed just after, are ready within a guard (rename: the hard link only)" {
        command -v python3 >/dev/null || skip "needs python3"
        local policy want
        for policy in auto close rename; do
                rm -rf "$T/in" "$T/stage" "$T/out"
                mkdir "$T/in" "$T/stage"
                printf 'x\n' >"$T/stage/linked"
                start_ferry "$T/out" watch --ready="$policy" -0 "$T/in"
                wait_watches "$FERRY_PID" 1 30
                ln "$T/stage/linked" "$T/in/linked"
                link_tmpfile "$T/in" tmpfile 'written whole' 0
                # rename: an O_TMPFILE linked in is written in place under its final name.
                want=2
                [[ $policy != rename ]] || want=1
                wait_nul_records "$T/out" "$want" 5 || {
                        echo "policy $policy: not ready within 5 s:" >&2
                        show_nul "$T/out" >&2
                        false
                }
                stop_ferry "$T/out"
                if [[ $policy == rename ]]; then
                        printf '%s\0' "$T/in/linked" >"$T/want"
                else
                        printf '%s\0' "$T/in/linked" "$T/in/tmpfile" >"$T/want"
                fi
                assert_same_nul_set "$T/want" "$T/out"
        done
}

@test "watch --ready: an O_TMPFILE linked in while still open comes out once, after auto's quiet time" {
        command -v python3 >/dev/null || skip "needs python3"
        mkdir "$T/in"
        start_ferry "$T/out" watch --ready=auto=1s -0 "$T/in"
        wait_watches "$FERRY_PID" 1 30
        link_tmpfile "$T/in" late 'held open a while' 0.5
        wait_nul_records "$T/out" 1 10
        stop_ferry "$T/out"
        printf '%s\0' "$T/in/late" >"$T/want"
        assert_same_nul_set "$T/want" "$T/out"
}
