#!/usr/bin/env bats
# auto_quiet.bats: under auto, a file written and never closed (nfs-ganesha's NFSv3 writes keep
# the server's fd open for minutes) is ready once it stayed unchanged for the quiet time, when
# only a file server holds it open; a local program holding it open is still waited for.

load helpers

@test "auto: a file held open by a file server (smbd here) is ready after the quiet time" {
        mkdir "$T/in" "$T/bin"
        # A stand-in server: its process name is smbd; it writes, then keeps the fd open.
        make_handler "$T/bin/smbd" 'exec 3>>"$1"' 'printf "payload\n" >&3' 'sleep 60 3>&-'
        start_ferry "$T/out" watch --ready=auto=1s "$T/in"
        wait_watches "$FERRY_PID" 1 30
        bg "$T/bin/smbd" "$T/in/held.csv"
        server=$BG_PID
        wait_line "$T/out" "ready $T/in/held.csv" 30
        proc_alive "$server" || { echo "the server let go of the file: the test proves nothing" >&2; return 1; }
        stop_ferry "$T/out"
}

@test "auto: a local program holding the file open is waited for, whatever the quiet time" {
        mkdir "$T/in"
        start_ferry "$T/out" watch --ready=auto=500ms "$T/in"
        wait_watches "$FERRY_PID" 1 30
        # Writes once, keeps it open 2.5 s (five quiet times), then writes the rest and closes.
        bg bash -c 'exec 3>"$1"; printf "part\n" >&3; sleep 2.5; printf "rest\n" >&3; exec 3>&-; printf x >"$1.closed"' \
                writer "$T/in/local.csv"
        wait_for file_exists "$T/in/local.csv.closed" 30
        wait_line "$T/out" "ready $T/in/local.csv" 30
        stop_ferry "$T/out"
        # Reported once, after the close: with the whole content.
        [[ $(grep -c "local.csv\$" "$T/out") -eq 1 ]]
}
