#!/usr/bin/env bats
# run_max_queue.bats: --max-queue N: ferry tracks at most N files of a folder at once, so that
# memory stays bounded however many files wait; the rest is found by listing the folder again
# once half of them are handled, and every file is still handled exactly once. The rule starts
# paused, so that the metrics show how many files wait before any is taken.

load helpers

# make_files DIR COUNT PREFIX: COUNT small files named PREFIX-NNNN in DIR
make_files() {
        python3 -c '
import sys
d, n, p = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    open(f"{d}/{p}-{i:04d}", "w").write(str(i))
' "$@"
}

# handled_once COUNT: the handler ran COUNT times, each on a different name
handled_once() {
        wait_lines "$T/handled" "$1" 120
        [[ -z $(sort "$T/handled" | uniq -d) ]] || { sort "$T/handled" | uniq -d | head >&2; return 1; }
        [[ $(wc -l <"$T/handled") -eq $1 ]]
}

setup_handler() {
        printf '#!/bin/sh\nprintf "%%s\\n" "$FERRY_ORIGINAL_PATH" >>"%s/handled"\n' "$T" >"$T/h.sh"
        chmod +x "$T/h.sh"
}

@test "run --max-queue 20: of 500 files waiting, 20 are queued; more arriving at the cap wait too; all are handled once" {
        mkdir "$T/in"
        setup_handler
        make_files "$T/in" 500 a
        "$FERRY" pause --dir "$T/in" >/dev/null
        start_ferry "$T/ferry" run -j 2 --max-queue 20 --metrics-file "$T/m.prom" "$T/in" -- "$T/h.sh"
        wait_for has_line "$T/m.prom" "ferry_queue_depth 20" 60
        # files that arrive while the queue is full are left to a later listing
        make_files "$T/in" 50 b
        sleep 1
        has_line "$T/m.prom" "ferry_queue_depth 20" || { grep queue_depth "$T/m.prom" >&2; return 1; }
        "$FERRY" resume --dir "$T/in" >/dev/null
        handled_once 550
        stop_ferry "$T/ferry"
        [[ -z $(find "$T/in" -mindepth 1 -maxdepth 1 -name '[ab]-*') ]]
        [[ $(find "$T/in/.ferry/done" -mindepth 1 -maxdepth 1 -name '[ab]-*' | wc -l) -eq 550 ]]
}

@test "run -r --max-queue 10 --batch 4: files in subfolders, all handled once" {
        mkdir -p "$T/in/x/y" "$T/in/z"
        printf '#!/bin/sh\nfor f; do printf "%%s\\n" "$f" >>"%s/handled"; done\n' "$T" >"$T/h.sh"
        chmod +x "$T/h.sh"
        make_files "$T/in" 100 a
        make_files "$T/in/x/y" 100 b
        make_files "$T/in/z" 100 c
        start_ferry "$T/ferry" run -r --max-queue 10 --batch 4 --ready close=0 "$T/in" -- "$T/h.sh" {paths}
        handled_once 300
        stop_ferry "$T/ferry"
}

@test "run --backend poll --max-queue 15: a polled folder of 200 files, all handled once" {
        mkdir "$T/in"
        setup_handler
        make_files "$T/in" 200 a
        start_ferry "$T/ferry" run --backend poll --poll-interval 100ms --max-queue 15 "$T/in" -- "$T/h.sh"
        handled_once 200
        stop_ferry "$T/ferry"
}

@test "run --check: max-queue is a count, and excludes keep" {
        mkdir "$T/in"
        run --separate-stderr "$FERRY" run --check --max-queue lots "$T/in" -- /bin/true
        assert_status 2
        [[ $stderr == *"max-queue: 'lots' is not a whole number"* ]]
        run --separate-stderr "$FERRY" run --check --max-queue 100 --keep "$T/in" -- /bin/true
        assert_status 2
        [[ $stderr == *"max-queue and keep exclude each other"* ]]
        run --separate-stderr "$FERRY" run --check --max-queue 100 "$T/in" -- /bin/true
        assert_status 0
}
