#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_concurrent.bats: several `ferry run` processes on one folder compete for its files by
# rename: each file is handled by exactly one of them, once, and ends in the done folder.

load helpers

# compete N: N ferry run processes (-j 2 each) on $T/in: 1,000 files present when they start,
# 1,000 more dropped while they run (half renamed in, half written in place).
compete() {
        local n=$1 i pids=()
        D=$T/in
        mkdir "$D"
        # $1: the log, $2: the claimed path DIR/.ferry/work/WORKER/N/NAME; the worker is recorded
        # beside the name, to see that the work was shared.
        make_handler "$T/h.sh" \
                'w=${2%/*/*}' \
                'printf "%s\0" "$FERRY_NAME" >>"$1"' \
                'printf "%s\n" "${w##*/}" >>"$1.workers"'
        make_numbered "$D" pre 1 1000
        {
                numbered_names pre 1 1000
                numbered_names new 1 1000
        } >"$T/want"

        for ((i = 1; i <= n; i++)); do
                start_ferry "$T/ferry.$i" run -j 2 "$D" -- "$T/h.sh" "$T/handled" {}
                pids+=("$FERRY_PID")
        done
        for ((i = 1; i <= n; i++)); do
                wait_run_started "$T/ferry.$i"
        done
        drop_numbered "$D" new 1 500 &
        make_numbered "$D" new 501 1000
        wait $!

        wait_files "$D/.ferry/done" 2000 120
        for ((i = 1; i <= n; i++)); do
                FERRY_PID=${pids[i - 1]}
                stop_ferry "$T/ferry.$i"
        done

        assert_same_nul_set "$T/want" "$T/handled"
        files_nul "$D/.ferry/done" "$T/done"
        assert_same_nul_set "$T/want" "$T/done"
        assert_queue_empty "$D"
        assert_no_claims "$D"
        echo "# files per worker: $(sort "$T/handled.workers" | uniq -c | awk '{print $1}' | tr '\n' ' ')" >&3
        workers=$(sort -u "$T/handled.workers" | wc -l)
        ((workers >= 2)) || {
                echo "only $workers of $n workers handled files: no competition took place" >&2
                return 1
        }
}

@test "run: two ferry run processes on one folder: each of 2,000 files handled exactly once" {
        compete 2
}

@test "run: four ferry run processes on one folder: each of 2,000 files handled exactly once" {
        compete 4
}
