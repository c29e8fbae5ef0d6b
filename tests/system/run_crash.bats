#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_crash.bats: a `ferry run` killed with SIGKILL leaves its claims behind; the next one on the
# same host sees the dead pid and adopts them. Across crashes nothing is lost and nothing stays
# claimed; a file is handled twice only if its handler was in flight when ferry died.

load helpers

@test "run: kill -9 five times during 2,000 slow handlers: none lost, none left claimed, few twice" {
        local jobs=4 crashes=5 seed i handled target recovered=0
        D=$T/in
        mkdir -p "$D/sub"
        make_handler "$T/h.sh" 'sleep 0.02' 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        # Half in a subfolder (-r): an adopted claim must find its way back to done/sub/.
        make_numbered "$D" f 1 1000
        make_numbered "$D/sub" g 1 1000
        { numbered_names f 1 1000; numbered_names g 1 1000; } >"$T/want"
        { numbered_names f 1 1000; seq -f 'sub/g-%05g' 1 1000 | tr '\n' '\0'; } >"$T/want.done"
        seed=${FERRY_TEST_SEED:-$((RANDOM * 32768 + RANDOM))}
        RANDOM=$seed
        echo "# crash seed $seed (set FERRY_TEST_SEED to repeat)" >&3

        for ((i = 1; i <= crashes; i++)); do
                start_ferry "$T/ferry.$i" run -r -j "$jobs" "$D" -- "$T/h.sh" "$T/handled" {}
                wait_run_started "$T/ferry.$i"
                # Kill at a random moment: after 0 to 299 more handler runs (at most 1,500 of the
                # 2,000 in all, so the last run always has work left).
                handled=$(count_nul "$T/handled")
                target=$((handled + RANDOM % 300))
                wait_nul_records "$T/handled" "$target" 60
                kill -KILL "$FERRY_PID"
                wait_exit "$FERRY_PID" 10
                echo "# crash $i: killed after $(count_nul "$T/handled") handler runs, $(count_files "$D/.ferry/done") in done, $(find "$D/.ferry/work" -type f ! -name '.*' | wc -l) claims left" >&3
        done

        start_ferry "$T/ferry.last" run -r -j "$jobs" "$D" -- "$T/h.sh" "$T/handled" {}
        wait_files "$D/.ferry/done" 2000 180
        stop_ferry "$T/ferry.last"

        for ((i = 2; i <= crashes; i++)); do
                recovered=$((recovered + $(grep -ac 'recovered from a worker that died' "$T/ferry.$i.err" || true)))
        done
        recovered=$((recovered + $(grep -ac 'recovered from a worker that died' "$T/ferry.last.err" || true)))
        duplicates=$(duplicates_nul "$T/handled")
        echo "# claims adopted from dead workers: $recovered; handled twice: $duplicates (bound $((jobs * crashes)))" >&3

        # Every file is in done, once, under its own name and subfolder.
        files_nul "$D/.ferry/done" "$T/done"
        assert_same_nul_set "$T/want.done" "$T/done"
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

@test "run: when ferry is killed with -9 its handlers and their process groups die too; the next start handles the file" {
        D=$T/in
        mkdir "$D"
        printf 'payload\n' >"$D/job.txt"
        # The handler and a grandchild in its group would both run for a minute.
        make_handler "$T/slow.sh" 'echo $$ >"$1"' 'sleep 60 &' 'echo $! >"$1.child"' 'wait'
        start_ferry "$T/ferry" run "$D" -- "$T/slow.sh" "$T/handler" {}
        wait_for file_exists "$T/handler.child" 30
        handler=$(cat "$T/handler")
        child=$(cat "$T/handler.child")
        kill -KILL "$FERRY_PID"
        wait_exit "$FERRY_PID" 10
        FERRY_PID=
        wait_for proc_gone "$handler" 10
        if ! wait_for proc_gone "$child" 5; then
                echo "the handler's background child $child outlived the killed ferry" >&2
                kill -KILL "$child" 2>/dev/null || true
                return 1
        fi
        # The claim stays behind the dead worker until the next start adopts it.
        [[ -n $(claims_left "$D") ]]

        make_handler "$T/quick.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/ferry2" run "$D" -- "$T/quick.sh" "$T/handled" {}
        wait_files "$D/.ferry/done" 1 30
        stop_ferry "$T/ferry2"
        printf 'job.txt\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        printf 'payload\n' >"$T/want.content"
        assert_same_file "$T/want.content" "$D/.ferry/done/job.txt"
        assert_no_claims "$D"
        assert_log_has "$T/ferry2" "claimed [run] $D/job.txt: recovered from a worker that died"
}

@test "run: a work area removed under a running worker (taken for dead) is made again, with a warning; files go on being handled" {
        mkdir "$T/in"
        make_handler "$T/h.sh" 'printf "%s\n" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/ferry" run -j 1 "$T/in" -- "$T/h.sh" "$T/handled"
        wait_run_started "$T/ferry"
        printf 'a\n' >"$T/in/one"
        wait_lines "$T/handled" 1 30
        # What a worker on another host does with a work area whose lease aged.
        local area
        area=$(find "$T/in/.ferry/work" -mindepth 1 -maxdepth 1 -type d -name 'run@*')
        [[ -n $area ]]
        rm -rf -- "$area"
        printf 'b\n' >"$T/in/two"
        wait_lines "$T/handled" 2 30
        wait_for file_exists "$T/in/.ferry/done/two" 30
        assert_log_has "$T/ferry" "took this worker for dead"
        [[ -f $area/.lease ]]
        stop_ferry "$T/ferry"
        [[ $(sort "$T/handled" | tr '\n' ' ') == "one two " ]]
}

@test "run: a running worker adopts the claims of workers that die after it started, again and again" {
        # The periodic look at the work area must list it afresh each time: a
        # listing that reused an exhausted one saw no dead worker after the first.
        D=$T/in
        mkdir "$D"
        make_handler "$T/quick.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/survivor" run --lease 1s --name same "$D" -- "$T/quick.sh" "$T/handled" {}
        wait_run_started "$T/survivor"
        make_handler "$T/slow.sh" 'echo $$ >"$1"' 'exec sleep 60'
        local round
        for round in 1 2; do
                # A second worker of the same rule takes the next file and dies holding it; the
                # survivor is busy with nothing, so only its periodic recovery can take it.
                printf 'payload %s\n' "$round" >"$T/job$round.txt"
                kill -STOP "$FERRY_PID"
                local survivor=$FERRY_PID
                start_ferry "$T/doomed$round" run --lease 1s --name same "$D" -- "$T/slow.sh" "$T/slow$round.pid" {}
                wait_run_started "$T/doomed$round"
                mv "$T/job$round.txt" "$D/job$round.txt"
                wait_for file_exists "$T/slow$round.pid" 30
                kill -KILL "$FERRY_PID"
                wait_exit "$FERRY_PID" 10
                FERRY_PID=$survivor
                kill -CONT "$survivor"
                wait_for file_exists "$D/.ferry/done/job$round.txt" 30
        done
        stop_ferry "$T/survivor"
        printf 'job1.txt\0job2.txt\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        assert_no_claims "$D"
}

@test "run: a worker killed while writing a note, or before its claim's rename, leaves notes; the next worker adopts the claim and leaves the work area empty" {
        D=$T/in
        mkdir -p "$D"
        mkdir -m 0711 "$D/.ferry" "$D/.ferry/work"
        # What a worker of this machine killed mid-note leaves: its lease (pid gone), a claim
        # with its file, and the notes' temporary files in the claim and the worker folder.
        local w=$D/.ferry/work/run@gone.999999.1
        mkdir -m 0711 "$w" "$w/7"
        printf '%s %s %s 999999 1 10000000000\n' gone "$(cat /etc/machine-id)" \
                "$(cat /proc/sys/kernel/random/boot_id)" >"$w/.lease"
        printf 'payload\n' >"$w/7/job.txt"
        printf 'half a no' >"$w/7/.ferry-tmp.999999.0"
        printf 'half a lea' >"$w/.ferry-tmp.999999.0"
        # Killed between writing a claim's origin and renaming its file there.
        mkdir -m 0711 "$w/8"
        printf 'sub' >"$w/8/.origin"
        make_handler "$T/quick.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/ferry" run "$D" -- "$T/quick.sh" "$T/handled" {}
        wait_files "$D/.ferry/done" 1 30
        stop_ferry "$T/ferry"
        printf 'job.txt\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        local left
        left=$(find "$D/.ferry/work" -mindepth 1 ! -name .clock -print)
        [[ -z $left ]] || {
                echo "left in the work area: $left" >&2
                false
        }
}

@test "run: a worker killed half-way through a move (link made, unlink not) left one file under two names; the next worker handles it once, or not again" {
        # Where RENAME_NOREPLACE is refused (sshfs, SMB, NFS) a move is a hard link and an
        # unlink. Killed in between, a worker leaves its claim with a second name: in done or
        # failed (moved), back in the folder (returned), or in another claim.
        D=$T/in
        mkdir -p "$D" "$T/staging"
        mkdir -m 0711 "$D/.ferry" "$D/.ferry/work" "$D/.ferry/done" "$D/.ferry/failed"
        local w=$D/.ferry/work/run@gone.999999.1 w2=$D/.ferry/work/run@gone.999998.1 i
        mkdir -m 0711 "$w" "$w2"
        for i in 1 2 3 4 5; do
                mkdir -m 0711 "$w/$i"
        done
        mkdir -m 0711 "$w2/1"
        printf '%s %s %s 999999 1 10000000000\n' gone "$(cat /etc/machine-id)" \
                "$(cat /proc/sys/kernel/random/boot_id)" >"$w/.lease"
        printf '%s %s %s 999998 1 10000000000\n' gone "$(cat /etc/machine-id)" \
                "$(cat /proc/sys/kernel/random/boot_id)" >"$w2/.lease"
        printf 'a\n' >"$w/1/a.txt"
        ln "$w/1/a.txt" "$D/.ferry/done/a.txt"   # moved to done: handled already
        printf 'b\n' >"$w/2/b.txt"
        ln "$w/2/b.txt" "$D/b.txt"               # returned to the folder: handled once, from there
        printf 'c\n' >"$w/3/c.txt"
        ln "$w/3/c.txt" "$D/.ferry/failed/c.txt" # moved to failed: not handled again
        printf 'd\n' >"$w/4/d.txt"
        ln "$w/4/d.txt" "$w2/1/d.txt"            # two claims of one file: handled once
        printf 'e\n' >"$T/staging/e.txt"
        ln "$T/staging/e.txt" "$w/5/e.txt"       # published by a link from outside: a file like any
        make_handler "$T/quick.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        start_ferry "$T/ferry" run "$D" -- "$T/quick.sh" "$T/handled" {}
        wait_files "$D/.ferry/done" 4 30
        stop_ferry "$T/ferry"
        printf 'b.txt\0d.txt\0e.txt\0' >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        files_nul "$D/.ferry/done" "$T/done"
        printf 'a.txt\0b.txt\0d.txt\0e.txt\0' >"$T/want.done"
        assert_same_nul_set "$T/want.done" "$T/done"
        [[ $(find "$D/.ferry/failed" -type f -name 'c.txt*' ! -name '*.ferry*' | wc -l) -eq 1 ]]
        assert_queue_empty "$D"
        assert_no_claims "$D"
        grep -q 'a.txt: recovered from a worker that died half-way through moving it: it is in .*/done/a.txt already' \
                "$T/ferry.err"
}

@test "run: a worker killed while its handler had written beside the claimed file: the next worker runs the file again and each leftover once, none goes to done unhandled" {
        D=$T/in
        mkdir "$D"
        # The first run writes eight files beside its input, then hangs until killed.
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"
if [ "$FERRY_NAME" = input ] && [ ! -e "$2" ]; then
        : >"$2"
        for i in 1 2 3 4 5 6 7 8; do printf x >"$FERRY_PATH.out$i"; done
        : >"$2.wrote"
        exec sleep 1000
fi'
        start_ferry "$T/ferry" run -j 1 "$D" -- "$T/h.sh" "$T/handled" "$T/first"
        wait_run_started "$T/ferry"
        printf 'payload\n' >"$D/input"
        wait_for file_exists "$T/first.wrote" 30
        kill -KILL "$FERRY_PID"
        wait_exit "$FERRY_PID" 10
        FERRY_PID=
        start_ferry "$T/ferry2" run -j 1 "$D" -- "$T/h.sh" "$T/handled" "$T/first"
        wait_files "$D/.ferry/done" 9 30
        stop_ferry "$T/ferry2"
        # The input twice (the killed run, the run after); each leftover once, as a file of
        # its own: which of the nine names was the claim cannot be told after the crash.
        {
                printf 'input\0input\0'
                for i in 1 2 3 4 5 6 7 8; do printf 'input.out%s\0' "$i"; done
        } >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        printf 'payload\n' >"$T/want.content"
        assert_same_file "$T/want.content" "$D/.ferry/done/input"
        assert_no_claims "$D"
}
