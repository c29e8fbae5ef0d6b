#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_crash.bats: a `ferry run` killed with SIGKILL leaves its claims behind; the next one on the
# same host sees the dead pid and adopts them. Across crashes nothing is lost and nothing stays
# claimed; a file is handled twice only if its handler was in flight when ferry died.

load helpers

@test "run: kill -9 five times during 2,000 slow handlers: none lost, none left claimed, few twice" {
        local jobs=4 crashes=5 seed i handled target recovered=0
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" 'sleep 0.02' 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        make_numbered "$D" f 1 2000
        numbered_names f 1 2000 >"$T/want"
        seed=${FERRY_TEST_SEED:-$((RANDOM * 32768 + RANDOM))}
        RANDOM=$seed
        echo "# crash seed $seed (set FERRY_TEST_SEED to repeat)" >&3

        for ((i = 1; i <= crashes; i++)); do
                start_ferry "$T/ferry.$i" run -j "$jobs" "$D" -- "$T/h.sh" "$T/handled" {}
                wait_run_started "$T/ferry.$i"
                # Kill at a random moment: after 0 to 299 more handler runs (at most 1,500 of the
                # 2,000 in all, so the last run always has work left).
                handled=$(count_nul "$T/handled")
                target=$((handled + RANDOM % 300))
                wait_nul_records "$T/handled" "$target" 60
                kill -KILL "$FERRY_PID"
                wait_exit "$FERRY_PID" 10
                echo "# crash $i: killed after $(count_nul "$T/handled") handler runs, $(count_files "$D/.ferry/done") in done, $(($(claims_left "$D" | wc -l))) claims left" >&3
        done

        start_ferry "$T/ferry.last" run -j "$jobs" "$D" -- "$T/h.sh" "$T/handled" {}
        wait_files "$D/.ferry/done" 2000 180
        stop_ferry "$T/ferry.last"

        for ((i = 2; i <= crashes; i++)); do
                recovered=$((recovered + $(grep -ac 'recovered from a worker that died' "$T/ferry.$i.err" || true)))
        done
        recovered=$((recovered + $(grep -ac 'recovered from a worker that died' "$T/ferry.last.err" || true)))
        duplicates=$(duplicates_nul "$T/handled")
        echo "# claims adopted from dead workers: $recovered; handled twice: $duplicates (bound $((jobs * crashes)))" >&3

        # Every file is in done, once, under its own name.
        files_nul "$D/.ferry/done" "$T/done"
        assert_same_nul_set "$T/want" "$T/done"
        assert_queue_empty "$D"
        assert_no_claims "$D"
        # Every name was handled at least once.
        sort -zu "$T/handled" >"$T/handled.unique"
        assert_same_nul_set "$T/want" "$T/handled.unique"
        # Repeats only for handlers in flight at a crash: at most jobs per crash.
        ((duplicates <= jobs * crashes)) || {
                echo "$duplicates names handled more than once; at most $((jobs * crashes)) could be in flight" >&2
                sort -z "$T/handled" | uniq -zc | sort -zrn | head -z -n 20 | tr '\0' '\n' >&2
                return 1
        }
        # The dead workers' folders were taken over and removed; a clean stop leaves no worker.
        leftover=$(find "$D/.ferry/work" -mindepth 1 ! -name .clock -print)
        [[ -z $leftover ]] || echo "# left in the work area after a clean stop: $(printf '%s\n' "$leftover" | head -5 | tr '\n' ' ')" >&3
}
