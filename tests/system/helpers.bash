# helpers.bash: shared set-up for ferry's system tests (bats): a scratch folder per test,
# background processes that are always reaped, waits with deadlines, byte-exact comparisons.
#
# Nothing here sleeps to wait for ferry. Every wait polls a condition every 50 ms until a
# deadline and fails with a message that says what it waited for. Deadlines are multiplied by
# FERRY_TEST_SLOW (an integer, default 1) so a sanitizer build can stretch them.
# FERRY_TEST_KEEP=1 keeps each test's scratch folder (its path is printed) to read after a run.

bats_require_minimum_version 1.5.0

FERRY=${FERRY:-$BATS_TEST_DIRNAME/../../build/ferry}
FERRY=$(realpath -m -- "$FERRY")
SLOW=${FERRY_TEST_SLOW:-1}
SYSCTL_LOCK=/run/lock/ferry-tests-sysctl.lock
export LC_ALL=C

# --- set-up and tear-down ------------------------------------------------------------------

# A .bats file that needs its own setup() or teardown() calls these from it.
ferry_setup() {
        if [[ ! -x $FERRY ]]; then
                echo "ferry binary not found at $FERRY: run make first" >&2
                return 1
        fi
        T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-test.XXXXXX")
        BG_PIDS=()
        SYSCTL_NAMES=()
        SYSCTL_SAVED=()
        PROBE_N=0
        FERRY_PID=
}

ferry_teardown() {
        kill_background
        restore_sysctls
        if [[ -n ${T:-} && -d $T ]]; then
                if [[ -n ${FERRY_TEST_KEEP:-} ]]; then
                        echo "# scratch kept: $T" >&3
                else
                        rm -rf -- "$T"
                fi
        fi
}

setup() { ferry_setup; }
teardown() { ferry_teardown; }

# refute CMD...: fails when CMD succeeds. A bare "! CMD" never fails a bats test: errexit
# ignores a negated command.
refute() {
        if "$@"; then
                echo "refute: this succeeded, and should not have: $*" >&2
                return 1
        fi
}

# --- time ----------------------------------------------------------------------------------

now_us() { echo "${EPOCHREALTIME/./}"; }

# seconds_to_us S: S may be fractional ("0.5"); the result is scaled by SLOW.
seconds_to_us() {
        local whole=${1%%.*} frac=
        [[ $1 == *.* ]] && frac=${1#*.}
        frac=${frac}000000
        frac=${frac:0:6}
        echo $(((10#${whole:-0} * 1000000 + 10#$frac) * SLOW))
}

# elapsed_ms START_US: milliseconds since START_US (from now_us).
elapsed_ms() { echo $((($(now_us) - $1) / 1000)); }

# --- processes -----------------------------------------------------------------------------

# bg CMD...: runs CMD in the background, remembered for teardown; its pid is in BG_PID.
# Redirect the call itself (bg cmd >out) to redirect the command. bats' fd 3 is closed so a
# leftover process cannot hold the test run open; fd 9 (the sysctl lock) is closed too.
bg() {
        "$@" </dev/null 3>&- 9>&- &
        BG_PID=$!
        BG_PIDS+=("$BG_PID")
}

# start_ferry OUT ARG...: runs `ferry ARG...` in the background, stdout to OUT, stderr to
# OUT.err. Its pid is in FERRY_PID.
start_ferry() {
        local out=$1
        shift
        "$FERRY" "$@" >"$out" 2>"$out.err" </dev/null 3>&- 9>&- &
        FERRY_PID=$!
        BG_PIDS+=("$FERRY_PID")
}

# proc_state STAT_FILE: the state letter of a /proc/PID[/task/TID]/stat (nothing when gone).
proc_state() {
        local stat
        stat=$(cat "$1" 2>/dev/null) || return 0
        stat=${stat##*) }
        printf '%s' "${stat%% *}"
}

# proc_gone PID: true when PID has exited (gone, or a zombie not yet reaped).
proc_gone() {
        local state
        state=$(proc_state "/proc/$1/stat")
        [[ -z $state || $state == Z ]]
}

# proc_stopped PID: every thread of PID is stopped (a SIGSTOP reaches a process's threads one
# by one, and a thread still running may yet act).
proc_stopped() {
        local stat
        for stat in /proc/"$1"/task/*/stat; do
                [[ $(proc_state "$stat") == [Tt] ]] || return 1
        done
}

proc_alive() { ! proc_gone "$1"; }

# wait_exit PID TIMEOUT_S: waits until PID (a child of this shell) exits; its exit status
# goes into EXIT_RC.
wait_exit() {
        wait_for proc_gone "$1" "$2" || return 1
        EXIT_RC=0
        wait "$1" 2>/dev/null || EXIT_RC=$?
}

# stop_ferry [OUT]: sends SIGTERM to the background ferry and asserts it exits with 0, as the
# contract says for SIGTERM. OUT names its output file for the error message.
stop_ferry() {
        [[ -n $FERRY_PID ]] || return 0
        kill -TERM "$FERRY_PID" 2>/dev/null || true
        if ! wait_exit "$FERRY_PID" 30; then
                echo "stop_ferry: ferry (pid $FERRY_PID) did not exit within 30 s of SIGTERM" >&2
                return 1
        fi
        FERRY_PID=
        if ((EXIT_RC != 0)); then
                echo "stop_ferry: ferry exited with $EXIT_RC after SIGTERM, expected 0" >&2
                [[ -n ${1:-} && -f $1.err ]] && { echo "--- stderr:" >&2; cat -v -- "$1.err" >&2; }
                return 1
        fi
}

# descendants PID: PID's children, grandchildren, ... (by parent pid, at this moment).
descendants() {
        local child
        for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
                echo "$child"
                descendants "$child"
        done
}

# kill_background: ends every process that bg/start_ferry started, and their descendants:
# SIGTERM, up to 5 s to exit, then SIGKILL.
kill_background() {
        local pid all=() deadline
        for pid in "${BG_PIDS[@]}"; do
                proc_gone "$pid" && continue
                all+=("$pid")
                mapfile -t -O "${#all[@]}" all < <(descendants "$pid")
        done
        ((${#all[@]})) || {
                BG_PIDS=()
                return 0
        }
        kill -TERM "${all[@]}" 2>/dev/null || true
        deadline=$(($(now_us) + 5000000))
        for pid in "${all[@]}"; do
                while ! proc_gone "$pid" && (($(now_us) < deadline)); do
                        sleep 0.05
                done
                proc_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
        done
        for pid in "${BG_PIDS[@]}"; do
                wait "$pid" 2>/dev/null || true
        done
        BG_PIDS=()
}

# --- waiting -------------------------------------------------------------------------------

# wait_for COND_CMD [ARG...] TIMEOUT_S: runs COND_CMD ARG... every 50 ms until it succeeds.
# Fails with a message naming the condition when TIMEOUT_S (scaled by SLOW) passes. The
# command is run as an argument vector, never through eval.
wait_for() {
        local timeout=${!#} deadline
        local -a cmd=("${@:1:$#-1}")
        deadline=$(($(now_us) + $(seconds_to_us "$timeout")))
        while ! "${cmd[@]}"; do
                if (($(now_us) > deadline)); then
                        echo "wait_for: gave up after ${timeout}s (x$SLOW) waiting for: ${cmd[*]}" >&2
                        return 1
                fi
                sleep 0.05
        done
}

# count_nul FILE / count_lines FILE: number of NUL / newline bytes in FILE (0 if missing).
count_nul() { if [[ -e $1 ]]; then tr -cd '\0' <"$1" | wc -c; else echo 0; fi; }
count_lines() { if [[ -e $1 ]]; then tr -cd '\n' <"$1" | wc -c; else echo 0; fi; }

has_nul_records() { (($(count_nul "$1") >= $2)); }
has_lines() { (($(count_lines "$1") >= $2)); }

# wait_nul_records FILE N TIMEOUT_S / wait_lines FILE N TIMEOUT_S: until FILE holds N records.
wait_nul_records() { wait_for has_nul_records "$1" "$2" "$3"; }
wait_lines() { wait_for has_lines "$1" "$2" "$3"; }

# has_line FILE LINE: FILE holds LINE as a whole line (LINE without newlines).
has_line() { grep -aqxF -- "$2" "$1" 2>/dev/null; }
wait_line() { wait_for has_line "$1" "$2" "$3"; }

# has_text FILE TEXT: FILE contains TEXT anywhere.
has_text() { grep -aqF -- "$2" "$1" 2>/dev/null; }

file_exists() { [[ -e $1 ]]; }
file_size_at_least() { [[ -e $1 ]] && (($(stat -c %s -- "$1") >= $2)); }

# inotify_watches PID: number of inotify watches PID holds (from /proc/PID/fdinfo).
inotify_watches() { cat /proc/"$1"/fdinfo/* 2>/dev/null | grep -c '^inotify wd:' || true; }
has_watches() { (($(inotify_watches "$1") >= $2)); }

# wait_watches PID N TIMEOUT_S: until PID holds at least N inotify watches. Used where a probe
# file would change what is asserted (--count, --include).
wait_watches() { wait_for has_watches "$1" "$2" "$3"; }

# --- probes: proving ferry is watching before acting ---------------------------------------
#
# A probe is a file named ready-probe-N or end-probe-N. Strip them from output with
# strip_probes_nul / strip_probes_lines before comparing.

# make_probe DIR NAME MODE: MODE write creates DIR/NAME in place (create + close_write);
# MODE rename writes it next to the scratch folder and renames it in (moved_to).
make_probe() {
        case $3 in
        write) printf 'probe\n' >"$1/$2" ;;
        rename)
                printf 'probe\n' >"$T/.probe-src"
                mv -f -- "$T/.probe-src" "$1/$2"
                ;;
        *)
                echo "make_probe: bad mode $3" >&2
                return 1
                ;;
        esac
}

# probe_until_seen DIR OUT [MODE] [TIMEOUT_S]: proves ferry watches DIR: creates
# DIR/ready-probe-N (a fresh N every second) until OUT mentions one.
probe_until_seen() {
        local dir=$1 out=$2 mode=${3:-write} timeout=${4:-30} deadline next=0 now
        deadline=$(($(now_us) + $(seconds_to_us "$timeout")))
        while ! grep -aq 'ready-probe-' "$out" 2>/dev/null; do
                now=$(now_us)
                if ((now > deadline)); then
                        echo "probe_until_seen: ferry never reported a probe in $dir within ${timeout}s" >&2
                        [[ -f $out.err ]] && { echo "--- ferry stderr:" >&2; cat -v -- "$out.err" >&2; }
                        return 1
                fi
                if ((now >= next)); then
                        PROBE_N=$((PROBE_N + 1))
                        make_probe "$dir" "ready-probe-$PROBE_N" "$mode"
                        next=$((now + 1000000))
                fi
                sleep 0.05
        done
}

# end_probe DIR OUT [MODE] [TIMEOUT_S]: writes DIR/end-probe-N once and waits until OUT
# mentions it: everything ferry saw before it has been printed (ferry reports in order).
end_probe() {
        local dir=$1 out=$2 mode=${3:-write} timeout=${4:-30}
        PROBE_N=$((PROBE_N + 1))
        make_probe "$dir" "end-probe-$PROBE_N" "$mode"
        if ! wait_for has_text "$out" "end-probe-$PROBE_N" "$timeout"; then
                [[ -f $out.err ]] && { echo "--- ferry stderr:" >&2; cat -v -- "$out.err" >&2; }
                return 1
        fi
}

# has_records_besides_probes FILE N / has_lines_besides_probes FILE N: FILE holds at least N
# NUL records / lines that are not probes.
count_nul_besides_probes() { grep -zavc -e 'ready-probe-' -e 'end-probe-' <"$1" 2>/dev/null || true; }
count_lines_besides_probes() { grep -avc -e 'ready-probe-' -e 'end-probe-' <"$1" 2>/dev/null || true; }
has_records_besides_probes() { (($(count_nul_besides_probes "$1") >= $2)); }
has_lines_besides_probes() { (($(count_lines_besides_probes "$1") >= $2)); }

# strip_probes_nul IN OUT / strip_probes_lines IN OUT: IN without probe records.
strip_probes_nul() { { grep -zav -e 'ready-probe-' -e 'end-probe-' <"$1" || true; } >"$2"; }
strip_probes_lines() { { grep -av -e 'ready-probe-' -e 'end-probe-' <"$1" || true; } >"$2"; }

# --- comparing -----------------------------------------------------------------------------

# show_nul FILE: NUL records as one line each, newlines and backslashes escaped, for messages.
show_nul() { sed -z 's/\\/\\\\/g; s/\n/\\n/g' <"$1" | tr '\0' '\n' | cat -v; }

# assert_same_nul_set EXPECTED ACTUAL: the NUL records of both files, sorted, are byte-equal
# (so duplicates and missing records both fail). On failure prints a diff and counts.
assert_same_nul_set() {
        local exp=$1 act=$2
        sort -z <"$exp" >"$exp.sorted"
        sort -z <"$act" >"$act.sorted"
        if ! cmp -s "$exp.sorted" "$act.sorted"; then
                echo "NUL records differ: expected $(count_nul "$exp") records, got $(count_nul "$act")" >&2
                echo "duplicates in actual: $(uniq -zd <"$act.sorted" | tr -cd '\0' | wc -c)" >&2
                diff <(show_nul "$exp.sorted") <(show_nul "$act.sorted") | head -40 >&2
                return 1
        fi
}

# assert_same_file EXPECTED ACTUAL: byte-equal files; prints both on failure.
assert_same_file() {
        if ! cmp -s "$1" "$2"; then
                echo "output differs from expected" >&2
                echo "--- expected:" >&2
                cat -A -- "$1" | head -40 >&2
                echo "--- actual:" >&2
                cat -A -- "$2" | head -40 >&2
                return 1
        fi
}

# assert_status EXPECTED: checks bats' $status after `run`, printing the output on mismatch.
assert_status() {
        if [[ $status -ne $1 ]]; then
                echo "exit status $status, expected $1" >&2
                echo "--- stdout: ${output:-}" >&2
                echo "--- stderr: ${stderr:-}" >&2
                return 1
        fi
}

# --- JSON (python3) ------------------------------------------------------------------------

# json_paths FILE EVENT OUT: checks that every line of FILE is one JSON object with an
# "event" and (except rescan) a "root", and writes the exact path bytes of each EVENT event to OUT as NUL
# records (from path_base64 when present, else path). Ready events must carry an integer
# size. Prints the number of events per type on stdout as "TYPE N" lines.
json_paths() {
        python3 - "$1" "$2" "$3" <<'EOF'
import base64, collections, json, sys
src, want, dst = sys.argv[1], sys.argv[2], sys.argv[3]
counts = collections.Counter()
with open(src, 'rb') as f, open(dst, 'wb') as out:
    for number, raw in enumerate(f, 1):
        if not raw.endswith(b'\n'):
            sys.exit(f'line {number}: no final newline: {raw!r}')
        obj = json.loads(raw)
        if not isinstance(obj, dict) or 'event' not in obj:
            sys.exit(f'line {number}: not an event object: {raw!r}')
        # A queue overflow concerns every root of the watcher: rescan may name none.
        if obj['event'] != 'rescan' and 'root' not in obj:
            sys.exit(f'line {number}: no root: {raw!r}')
        counts[obj['event']] += 1
        if obj['event'] == 'ready' and not isinstance(obj.get('size'), int):
            sys.exit(f'line {number}: ready event without integer size: {raw!r}')
        if obj['event'] != want:
            continue
        if 'path_base64' in obj:
            path = base64.b64decode(obj['path_base64'], validate=True)
            shown = path.decode('utf-8', errors='replace')
            if obj.get('path') != shown:
                sys.exit(f'line {number}: path {obj.get("path")!r} is not path_base64 with U+FFFD: {shown!r}')
        else:
            path = obj['path'].encode('utf-8')
        out.write(path + b'\0')
for event, n in sorted(counts.items()):
    print(event, n)
EOF
}

# --- privileges and sysctls ----------------------------------------------------------------

# require_root WHAT: skips the test when not root.
require_root() {
        if [[ $EUID -ne 0 ]]; then
                skip "needs root: $*"
        fi
}

# mount_bindfs SERVER MOUNT: SERVER's folder mounted on MOUNT through FUSE (bindfs, as sshfs or
# smbnetfs would be), both made; MOUNTED=MOUNT for the teardown. Skips, saying why, where it
# cannot be.
mount_bindfs() {
        require_root "mounts a FUSE file system"
        command -v bindfs >/dev/null || skip "bindfs is missing (scripts/install-deps test installs it)"
        [[ -c /dev/fuse ]] || skip "no /dev/fuse on this machine"
        mkdir -p "$1" "$2"
        bindfs "$1" "$2" || skip "cannot mount FUSE here"
        MOUNTED=$2
}

# restore_sysctls: puts back every sysctl with_sysctl changed, in reverse order (so a value
# set twice ends at the original). teardown calls it; a test may call it earlier.
restore_sysctls() {
        local i
        for ((i = ${#SYSCTL_NAMES[@]} - 1; i >= 0; i--)); do
                printf '%s\n' "${SYSCTL_SAVED[i]}" >"/proc/sys/${SYSCTL_NAMES[i]//.//}" ||
                        echo "restore_sysctls: could not restore ${SYSCTL_NAMES[i]}=${SYSCTL_SAVED[i]}" >&2
        done
        SYSCTL_NAMES=()
        SYSCTL_SAVED=()
        exec 9>&-
}

# with_sysctl NAME VALUE: sets a sysctl for this test; teardown restores the old value, also
# when the test fails. Sysctls are global: a lock (fd 9, held until restore_sysctls) keeps
# two test runs on one machine from saving each other's temporary values.
with_sysctl() {
        local name=$1 value=$2 file=/proc/sys/${1//.//} old
        require_root "sets sysctl $name"
        if ((${#SYSCTL_NAMES[@]} == 0)); then
                exec 9>"$SYSCTL_LOCK"
                flock -w $((300 * SLOW)) 9 || {
                        echo "with_sysctl: another test run holds $SYSCTL_LOCK" >&2
                        return 1
                }
        fi
        old=$(<"$file")
        SYSCTL_NAMES+=("$name")
        SYSCTL_SAVED+=("$old")
        printf '%s\n' "$value" >"$file"
}

# --- ferry run -----------------------------------------------------------------------------

# make_handler FILE LINE...: writes FILE, a /bin/sh script of LINEs, executable. The handlers of
# the run tests are script files, so that no shell syntax reaches ferry's argument template.
make_handler() {
        local file=$1
        shift
        { printf '#!/bin/sh\n'; printf '%s\n' "$@"; } >"$file"
        chmod +x -- "$file"
}

# numbered_names PREFIX FIRST LAST: PREFIX-NNNNN for FIRST..LAST, as NUL records on stdout.
numbered_names() { seq -f "$1-%05g" "$2" "$3" | tr '\n' '\0'; }

# make_numbered DIR PREFIX FIRST LAST: writes the files DIR/PREFIX-NNNNN in place, each
# holding its name (open, create, write, close: as a writer would; not empty, which the
# auto policy holds for its quiet time).
make_numbered() {
        local name
        for name in $(seq -f "$2-%05g" "$3" "$4"); do
                printf '%s\n' "$name" >"$1/$name"
        done
}

# drop_numbered DIR PREFIX FIRST LAST: the same files, made in a staging folder in $T and
# renamed into DIR, each arriving complete.
drop_numbered() {
        local stage
        stage=$(mktemp -d "$T/.stage.XXXXXX")
        make_numbered "$stage" "$2" "$3" "$4"
        # not mv with many names: it stats each target after its rename, and ferry may have
        # claimed it by then ("cannot stat"). Into another mount, copied as mv would.
        python3 -c 'import errno, os, shutil, sys
for n in sorted(os.listdir(sys.argv[1])):
    src, dst = os.path.join(sys.argv[1], n), os.path.join(sys.argv[2], n)
    try:
        os.rename(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        shutil.move(src, dst)' "$stage" "$1"
        rmdir -- "$stage"
}

# count_files DIR: regular files below DIR (0 when DIR is missing); names may hold newlines.
count_files() { if [[ -d $1 ]]; then find "$1" -type f -printf x | wc -c; else echo 0; fi; }
has_files() { (($(count_files "$1") >= $2)); }
# wait_files DIR N TIMEOUT_S: until DIR holds at least N regular files (at any depth).
wait_files() { wait_for has_files "$1" "$2" "$3"; }

# files_nul DIR OUT: the regular files below DIR, relative to DIR, as NUL records.
files_nul() { find "$1" -type f -printf '%P\0' >"$2"; }

# run_started OUT: ferry run's stderr (OUT.err) says it watches its folder: files present at
# start are queued and new ones will be seen.
run_started() { has_text "$1.err" ': watching '; }
wait_run_started() {
        if ! wait_for run_started "$1" "${2:-30}"; then
                echo "--- ferry stderr:" >&2
                cat -v -- "$1.err" >&2
                return 1
        fi
}

# claims_left DIR: files in DIR/.ferry/work other than workers' .lease and the shared .clock,
# that is claimed files (and stray temporary files), one per line.
claims_left() {
        [[ -d $1/.ferry/work ]] || return 0
        find "$1/.ferry/work" -type f ! -name .lease ! -name .clock -print
}

# assert_no_claims DIR: no claimed file is left in DIR's work area.
assert_no_claims() {
        local left
        left=$(claims_left "$1")
        if [[ -n $left ]]; then
                echo "claims left in $1/.ferry/work:" >&2
                printf '%s\n' "$left" | head -20 | cat -v >&2
                return 1
        fi
}

# assert_queue_empty DIR: no file is left in DIR itself (or its subfolders) outside .ferry.
assert_queue_empty() {
        local left
        left=$(find "$1" -path "$1/.ferry" -prune -o -type f -print)
        if [[ -n $left ]]; then
                echo "files left in $1: $(printf '%s\n' "$left" | wc -l)" >&2
                printf '%s\n' "$left" | head -20 | cat -v >&2
                return 1
        fi
}

# duplicates_nul FILE: how many NUL records of FILE repeat an earlier one.
duplicates_nul() { echo $(($(count_nul "$1") - $(sort -zu <"$1" | tr -cd '\0' | wc -c))); }

# assert_log_has OUT TEXT: ferry's stderr (OUT.err) contains TEXT; prints it when not.
assert_log_has() {
        if ! has_text "$1.err" "$2"; then
                echo "ferry's stderr does not contain: $2" >&2
                echo "--- ferry stderr:" >&2
                tail -40 -- "$1.err" | cat -v >&2
                return 1
        fi
}

# --- test hosts (scripts/hosts) -------------------------------------------------------------

HOSTS=$(realpath -m -- "$BATS_TEST_DIRNAME/../../scripts/hosts")

# hosts_missing TOOL...: why this machine cannot build test hosts that use TOOLs (not root, no
# FUSE, no network namespaces, a TOOL missing), or nothing when it can.
hosts_missing() {
        local c
        [[ $EUID -eq 0 ]] || { echo "needs root (network namespaces, FUSE)"; return; }
        [[ -c /dev/fuse ]] || { echo "no /dev/fuse"; return; }
        for c in ip nsenter unshare "$@"; do
                command -v "$c" >/dev/null || { echo "$c is missing (scripts/install-deps test)"; return; }
        done
        ip netns list >/dev/null 2>&1 || echo "network namespaces do not work here"
}

# hosts_up_file SERVE HOST...: for setup_file: `scripts/hosts up --serve SERVE HOST...`, its state
# folder exported as FERRY_HOSTS; its log on failure. hosts_down_file takes them down.
hosts_up_file() {
        local out
        out=$("$HOSTS" up --serve "$1" "${@:2}" 2>"$BATS_FILE_TMPDIR/up.log") ||
                { cat "$BATS_FILE_TMPDIR/up.log" >&2; return 1; }
        export FERRY_HOSTS=${out#FERRY_HOSTS=}
}
hosts_down_file() { [[ -z ${FERRY_HOSTS:-} ]] || "$HOSTS" down "$FERRY_HOSTS"; }

# file_quiet FILE S: FILE has not changed for S seconds (for wait_for: the first calls start the
# clock, each change restarts it).
file_quiet() {
        local now sum
        sum=$(cksum <"$1" 2>/dev/null || true)
        now=$(now_us)
        if [[ $sum != "${QUIET_SUM:-}" ]]; then
                QUIET_SUM=$sum QUIET_SINCE=$now
                return 1
        fi
        ((now - QUIET_SINCE >= $2 * 1000000))
}
