#!/usr/bin/env bats
# share_server_fd.bats: nfs-ganesha keeps its write descriptor open after an NFSv4 CLOSE and
# after a rename (share_matrix.bats, nfs3/nfs4 rows), so the lease check keeps saying "a
# writer holds it". A file that only file servers hold is ready once quiet (auto) or at once
# after 1 s (rename); one that a local program holds waits for its close. Here the server is
# a copy of sleep(1) named ganesha.nfsd holding the file open for writing: no root needed.

load helpers

setup() {
        ferry_setup
        mkdir "$T/in"
        cp "$(command -v sleep)" "$T/ganesha.nfsd"
}

# hold PROGRAM FILE: PROGRAM (a sleep) in the background, FILE open for writing on its fd 4
hold() {
        bg "$1" 1000 4>>"$2"
        HOLDER=$BG_PID
        wait_for has_text "/proc/$HOLDER/comm" "${1##*/}" 10
}

@test "share server fd: auto: renamed into place, held only by a file server: ready once quiet, once" {
        start_ferry "$T/out" watch --ready=auto=1s -0 "$T/in"
        wait_watches "$FERRY_PID" 1 30
        printf 'data\n' >"$T/in/.f.part"
        hold "$T/ganesha.nfsd" "$T/in/.f.part"
        mv "$T/in/.f.part" "$T/in/f"
        wait_nul_records "$T/out" 1 30
        # the server's late close of the unchanged file: not a new version
        kill "$HOLDER"
        wait_for proc_gone "$HOLDER" 10
        end_probe "$T/in" "$T/out"
        stop_ferry "$T/out"
        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$T/in/f" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "share server fd: auto: closed by its writer while a file server keeps a descriptor (NFSv4): ready once" {
        start_ferry "$T/out" watch --ready=auto=1s -0 "$T/in"
        wait_watches "$FERRY_PID" 1 30
        hold "$T/ganesha.nfsd" "$T/in/f"
        printf 'written by the client\n' >>"$T/in/f"
        wait_nul_records "$T/out" 1 60
        kill "$HOLDER"
        wait_for proc_gone "$HOLDER" 10
        end_probe "$T/in" "$T/out"
        stop_ferry "$T/out"
        strip_probes_nul "$T/out" "$T/got"
        printf '%s\0' "$T/in/f" >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "share server fd: rename: renamed into place, held only by a file server: ready" {
        start_ferry "$T/out" watch --ready=rename -0 "$T/in"
        wait_watches "$FERRY_PID" 1 30
        printf 'data\n' >"$T/in/.f.part"
        hold "$T/ganesha.nfsd" "$T/in/.f.part"
        mv "$T/in/.f.part" "$T/in/f"
        wait_nul_records "$T/out" 1 30
        stop_ferry "$T/out"
        printf '%s\0' "$T/in/f" >"$T/want"
        assert_same_nul_set "$T/want" "$T/out"
}

@test "share server fd: auto: renamed into place, held by a local program: not ready until it closes" {
        start_ferry "$T/out" watch --ready=auto=1s -0 "$T/in"
        wait_watches "$FERRY_PID" 1 30
        cp "$(command -v sleep)" "$T/writer"
        printf 'data\n' >"$T/in/.f.part"
        hold "$T/writer" "$T/in/.f.part"
        mv "$T/in/.f.part" "$T/in/f"
        # quiet for longer than auto's 1 s: a local writer still counts
        end_probe "$T/in" "$T/out"
        sleep 2.5 # the quiet time must pass to show that it does not make the file ready
        end_probe "$T/in" "$T/out"
        run ! grep -qzxF "$T/in/f" "$T/out"
        kill "$HOLDER"
        wait_for proc_gone "$HOLDER" 10
        wait_for has_text "$T/out" "$T/in/f" 30
        stop_ferry "$T/out"
}
