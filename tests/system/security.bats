#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted shell text is meant literally
# security.bats: ferry run works as root on a folder that an unprivileged user, the attacker, may
# write to (group-writable 0775 without the sticky bit, or 1777), with handlers run as another
# user (--user). The attacker plants symbolic links, forged work areas and swapped folders to make
# ferry move, read, deliver or delete files of a root-only folder ($T/secret, the canaries) or
# write into a stand-in for /etc ($T/etc). After each attack both folders must be exactly as they
# were (names, types, modes, owners, inodes, sizes, times, link targets, SHA-256), the canaries'
# content must appear in no handler input or output, and honest files must be handled exactly
# once, unless ferry refused to start, which it must do when its .ferry folder, or a done or
# failed folder, is not its own: a symbolic link, not a directory, owned by another user, or
# writable by group or others.
#
# Every test needs root: it creates two users, ferry-att-PID-N (the attacker) and ferry-wrk-PID-N
# (the handlers' user), removed in teardown.

load helpers

# --- users ---------------------------------------------------------------------------------

setup() {
        ferry_setup
        USERS=()
        [[ $EUID -eq 0 ]] || skip "needs root (creates users)"
        if ! command -v useradd >/dev/null || ! command -v userdel >/dev/null; then
                skip "needs root (creates users): useradd or userdel is missing"
        fi
        if command -v setpriv >/dev/null; then
                AS=setpriv
        elif command -v runuser >/dev/null; then
                AS=runuser
        else
                skip "needs setpriv or runuser to act as another user"
        fi
        chmod 0755 "$T"     # the attacker and the handlers' user may traverse it
        cd "$T" || return 1 # handlers run in ferry's working directory: one they can enter
        ATT=ferry-att-$$-$BATS_TEST_NUMBER
        WRK=ferry-wrk-$$-$BATS_TEST_NUMBER
        add_user "$ATT"
        add_user "$WRK"
        ATT_UID=$(id -u "$ATT")
        ATT_GID=$(id -g "$ATT")
        WRK_UID=$(id -u "$WRK")
        WRK_GID=$(id -g "$WRK")

        D=$T/in  # the watched folder, made by make_dir
        O=$T/out # an --output folder, where a test uses one
        H=$T/h   # the handler's own folder: its log, its copy of what it read, its flags
        mkdir -m 0755 "$H"
        chown "$WRK_UID:$WRK_GID" "$H"

        # The canaries: root-only files whose content must never be seen, moved or changed.
        TAG=ferry-canary-$$-$BATS_TEST_NUMBER-$RANDOM$RANDOM
        mkdir -m 0700 "$T/secret"
        local name
        for name in canary a.txt b.txt f1 f2 f3 x.txt; do
                printf '%s:%s\n' "$TAG" "$name" >"$T/secret/$name"
                chmod 0600 "$T/secret/$name"
        done
        # A stand-in for /etc: root's, world-readable, not writable by others.
        mkdir -m 0755 "$T/etc" "$T/etc/conf.d"
        printf 'root:x:0:0:root:/root:/bin/sh\n' >"$T/etc/passwd"
        printf 'root:*:1::::::\n' >"$T/etc/shadow"
        chmod 0600 "$T/etc/shadow"
        printf 'setting=1\n' >"$T/etc/conf.d/app.conf"
}

teardown() {
        local u
        cd /
        ferry_teardown # ferry, its keeper and its handlers first: a user with processes stays
        for u in "${USERS[@]}"; do
                userdel "$u" || echo "teardown: could not remove user $u" >&2
        done
}

add_user() {
        useradd --no-create-home --shell /usr/sbin/nologin "$1"
        USERS+=("$1")
}

# as_att CMD...: runs CMD as the attacker, with its uid and gid and no other group.
as_att() {
        if [[ $AS == setpriv ]]; then
                setpriv --reuid="$ATT_UID" --regid="$ATT_GID" --clear-groups -- "$@"
        else
                runuser -u "$ATT" -- "$@"
        fi
}

# att_cannot CMD...: the attacker's CMD fails; says what it could do when it succeeds.
att_cannot() {
        if as_att "$@" >/dev/null 2>&1; then
                echo "the attacker could: $*" >&2
                return 1
        fi
}

# --- folders and files ---------------------------------------------------------------------

# make_dir MODE: the watched folder $D, root's, in the attacker's group, with MODE (0775: the
# group may write, no sticky bit; 1777: everyone may write, sticky).
make_dir() {
        mkdir "$D"
        chown "0:$ATT_GID" "$D"
        chmod "$1" "$D"
}

# att_drop DIR NAME / root_drop DIR NAME: an honest file DIR/NAME holding "honest:NAME", written
# under a hidden name and renamed into place, by the attacker / by root.
att_drop() {
        as_att sh -c 'printf "honest:%s\n" "$2" >"$1/.drop.$2" && mv -T -- "$1/.drop.$2" "$1/$2"' sh "$1" "$2"
}
root_drop() {
        printf 'honest:%s\n' "$2" >"$1/.drop.$2"
        mv -T -- "$1/.drop.$2" "$1/$2"
}

# assert_honest FILE NAME: FILE is a regular file holding what att_drop/root_drop wrote for NAME.
assert_honest() {
        if [[ -L $1 || ! -f $1 ]] || [[ $(cat -- "$1") != "honest:$2" ]]; then
                echo "$1 is not the honest file $2:" >&2
                ls -la -- "$1" >&2 2>&1 || true
                cat -A -- "$1" >&2 2>/dev/null || true
                return 1
        fi
}

# assert_mode PATH MODE: PATH is no symbolic link, is owned by root, and has mode MODE (as
# stat's %a: 711, 600...).
assert_mode() {
        local got
        got=$(stat -c '%F|%a|%u' -- "$1") || return 1
        if [[ $got == "symbolic link|"* || ${got#*|} != "$2|0" ]]; then
                echo "$1: ${got//|/ }; expected mode $2, owned by root" >&2
                return 1
        fi
}

# --- snapshots -----------------------------------------------------------------------------

# snapshot DIR [times]: one line per entry of DIR, DIR itself included, never following a link:
# path, type, mode, owner, inode, size, link target (and with "times" mtime and ctime), then
# the SHA-256 of each regular file; sorted.
snapshot() {
        local fmt='%p|%y|%m|%U:%G|%i|%s|%l'
        [[ ${2:-} == times ]] && fmt+='|%T@|%C@'
        (
                cd "$1" || exit 1
                {
                        find . -printf "$fmt\n"
                        find . -type f -exec sha256sum -- {} +
                } | sort
        )
}

# take_snapshots: records $T/secret and $T/etc (with times), and $D (without).
take_snapshots() {
        snapshot "$T/secret" times >"$T/snap.secret"
        snapshot "$T/etc" times >"$T/snap.etc"
        if [[ -d $D ]]; then snapshot "$D" >"$T/snap.in"; fi
}

# assert_snapshots_unchanged: $T/secret and $T/etc are exactly as take_snapshots found them:
# nothing created, changed, moved or deleted there.
assert_snapshots_unchanged() {
        local which
        for which in secret etc; do
                snapshot "$T/$which" times >"$T/snap.$which.after"
                if ! cmp -s "$T/snap.$which" "$T/snap.$which.after"; then
                        echo "$T/$which changed (< before, > after):" >&2
                        diff "$T/snap.$which" "$T/snap.$which.after" | head -30 >&2
                        return 1
                fi
        done
}

# assert_in_kept: every entry of $D that take_snapshots saw is still there, unchanged and
# unmoved (ferry may have added entries).
assert_in_kept() {
        local gone
        snapshot "$D" >"$T/snap.in.after"
        gone=$(comm -23 "$T/snap.in" "$T/snap.in.after")
        if [[ -n $gone ]]; then
                echo "entries of $D changed, moved or deleted:" >&2
                printf '%s\n' "$gone" | head -20 >&2
                echo "--- now:" >&2
                head -40 "$T/snap.in.after" >&2
                return 1
        fi
}

# assert_no_canary: the canaries' content is nowhere it could have been delivered: not in what
# the handler read or wrote, not in ferry's output and log, not in the output folder, not below
# the watched folder (its done and failed folders included).
assert_no_canary() {
        local found
        found=$(grep -rlF -D skip -- "$TAG" "$H" "$T/ferry" "$T/ferry.err" "$O" "$D" 2>/dev/null || true)
        if [[ -n $found ]]; then
                echo "canary content found in:" >&2
                printf '%s\n' "$found" >&2
                return 1
        fi
}

# --- the handler ---------------------------------------------------------------------------

# make_sec_handler BLOCK STDIN: $T/h.sh, run as $WRK. It appends FERRY_ORIGINAL_PATH to $H/log,
# fails (exit 1) for names starting with "bad", and copies the file (its stdin with STDIN=yes,
# else the claimed path $1) to its stdout and to $H/seen. With BLOCK=first the first run, with
# BLOCK=NAME the run for NAME, writes FERRY_ORIGINAL_PATH to $H/blocked and waits until the test
# creates $H/go (release), for 30 s at most.
make_sec_handler() {
        cat >"$T/h.sh" <<EOF
#!/bin/sh
printf '%s\n' "\$FERRY_ORIGINAL_PATH" >>"$H/log"
case "\$FERRY_NAME" in bad*) exit 1 ;; esac
block=no
if [ "$1" = first ]; then
        mkdir "$H/first" 2>/dev/null && block=yes
elif [ "$1" = "\$FERRY_NAME" ]; then
        block=yes
fi
if [ \$block = yes ]; then
        printf '%s\n' "\$FERRY_ORIGINAL_PATH" >"$H/blocked"
        i=0
        while [ ! -e "$H/go" ] && [ \$i -lt 600 ]; do
                sleep 0.05
                i=\$((i + 1))
        done
fi
if [ "$2" = yes ]; then
        tee -a "$H/seen"
else
        cat -- "\$1" | tee -a "$H/seen"
fi
EOF
        chmod 0755 "$T/h.sh"
}

# start_sec OPTION... DIR: ferry run as root, handlers as $WRK, no retries, the handler $T/h.sh
# with the claimed path; output in $T/ferry, log in $T/ferry.err.
start_sec() {
        [[ -e $T/h.sh ]] || make_sec_handler "" no
        start_ferry "$T/ferry" run --user "$WRK" --retries 0 "$@" -- "$T/h.sh" {}
}

show_err() {
        echo "--- ferry stderr:" >&2
        tail -40 -- "$T/ferry.err" 2>/dev/null | cat -v >&2
}

# wait_logged KIND PATH: until ferry logs "KIND [run] PATH:" (done, failed).
wait_logged() {
        if ! wait_for has_text "$T/ferry.err" "$1 [run] $2:" 20; then
                show_err
                return 1
        fi
}

wait_blocked() {
        if ! wait_for file_exists "$H/blocked" 20; then
                show_err
                return 1
        fi
}

release() { : >"$H/go"; }

# assert_handled PATH...: the handler ran exactly once for each PATH (FERRY_ORIGINAL_PATH) and
# for nothing else.
assert_handled() {
        if (($#)); then printf '%s\n' "$@"; fi | sort >"$T/handled.want"
        if [[ -e $H/log ]]; then sort "$H/log" >"$T/handled.got"; else : >"$T/handled.got"; fi
        if ! cmp -s "$T/handled.want" "$T/handled.got"; then
                echo "handler runs differ from the expected set (< expected, > actual):" >&2
                diff "$T/handled.want" "$T/handled.got" >&2
                return 1
        fi
}

# --- refusing to start ---------------------------------------------------------------------

# ferry_settled: the background ferry has exited, or has started watching.
ferry_settled() { proc_gone "$FERRY_PID" || run_started "$T/ferry"; }

# expect_refusal PATH REASON: the ferry started by start_sec refuses to start: it exits with
# status 1 without watching, and one line of its stderr, not a warning, names PATH and matches
# the extended regular expression REASON. (Warnings are left out: the one about a folder
# writable by its group without the sticky bit names DIR/.ferry and says "writable by" too.)
expect_refusal() {
        local path=$1 reason=$2
        if ! wait_for ferry_settled 15; then
                show_err
                return 1
        fi
        if proc_alive "$FERRY_PID"; then
                echo "ferry started watching instead of refusing (expected: $path, /$reason/)" >&2
                show_err
                return 1
        fi
        wait_exit "$FERRY_PID" 5
        FERRY_PID=
        if ((EXIT_RC != 1)); then
                echo "ferry exited with status $EXIT_RC, expected 1" >&2
                show_err
                return 1
        fi
        if ! grep -av '^ferry: warning' "$T/ferry.err" | grep -aF -- "$path" | grep -Eq -- "$reason"; then
                echo "no line of ferry's stderr names $path and matches /$reason/" >&2
                show_err
                return 1
        fi
}

# assert_untouched: after a refusal: the canaries and $T/etc as they were, every entry of $D
# as it was, no handler run, nothing claimed.
assert_untouched() {
        assert_snapshots_unchanged
        assert_in_kept
        assert_handled
        if grep -aq 'claimed \[' "$T/ferry.err"; then
                echo "ferry claimed a file before refusing" >&2
                show_err
                return 1
        fi
}

# refusal_setup MODE: $D with MODE and two honest files, one from the attacker, one from root.
refusal_setup() {
        make_dir "$1"
        att_drop "$D" honest-att.txt
        root_drop "$D" honest-root.txt
}

# refuse PATH REASON [OPTION...]: snapshots, starts ferry on $D with OPTIONs, expects a refusal
# naming PATH for REASON, and that nothing was touched; the honest files are still in $D.
refuse() {
        local path=$1 reason=$2
        shift 2
        take_snapshots
        start_sec "$@" "$D"
        expect_refusal "$path" "$reason"
        assert_untouched
        assert_honest "$D/honest-att.txt" honest-att.txt
        assert_honest "$D/honest-root.txt" honest-root.txt
}

# --- .ferry planted by the attacker before the first start ---------------------------------

planted_symlink() {
        refusal_setup "$1"
        as_att ln -s "$T/secret" "$D/.ferry"
        refuse "$D/.ferry" 'symbolic link'
        [[ $(readlink "$D/.ferry") == "$T/secret" ]]
}

@test "security: 0775: a .ferry that is the attacker's symlink to the secret folder: refused" {
        planted_symlink 0775
}

@test "security: 1777: a .ferry that is the attacker's symlink to the secret folder: refused" {
        planted_symlink 1777
}

planted_owned() {
        refusal_setup "$1"
        as_att mkdir "$D/.ferry"
        as_att ln -s "$T/etc" "$D/.ferry/done"
        as_att ln -s "$T/etc" "$D/.ferry/failed"
        refuse "$D/.ferry" 'not owned'
}

@test "security: 0775: a .ferry made by the attacker, done and failed linked to etc: refused (not owned)" {
        planted_owned 0775
}

@test "security: 1777: a .ferry made by the attacker, done and failed linked to etc: refused (not owned)" {
        planted_owned 1777
}

# dead_worker_lease: a lease for a worker of the default rule on this machine with pid 0 (dead at
# once); its folder name, run@HOST.1.1, in WORKER.
dead_worker_lease() {
        local host machine boot
        host=$(hostname)
        host=${host//\//_}
        host=${host//@/_}
        machine=$(cat /etc/machine-id 2>/dev/null || echo -)
        boot=$(cat /proc/sys/kernel/random/boot_id)
        WORKER=run@$host.1.1
        LEASE="$host $machine $boot 0 0 60000000000"
}

# A forged work area: a dead worker of the default rule (lease with pid 0 on this machine) with
# claim 1 a link to the secret folder, and claim 2 an honest-looking file whose .origin leads
# out of $D (to $T/etc: ../etc from $D) and whose .output names a canary (which the worker
# that takes the claim over would delete as a dead worker's partial output).
planted_forged_claims() {
        local w
        refusal_setup "$1"
        dead_worker_lease
        w=$D/.ferry/work/$WORKER
        as_att mkdir -p "$w/2"
        as_att sh -c 'printf "%s\n" "$2" >"$1/.lease"' sh "$w" "$LEASE"
        as_att ln -s "$T/secret" "$w/1"
        att_drop "$w/2" job.txt
        as_att sh -c 'printf "%s" ../etc >"$1/.origin"; printf "%s" "$2" >"$1/.output"' sh "$w/2" "$T/secret/canary"
        refuse "$D/.ferry" 'not owned'
        assert_honest "$w/2/job.txt" job.txt
}

@test "security: 0775: a .ferry/work with forged claims (symlinked claim, .origin, .output): refused" {
        planted_forged_claims 0775
}

@test "security: 1777: a .ferry/work with forged claims (symlinked claim, .origin, .output): refused" {
        planted_forged_claims 1777
}

# Beyond the brief, from the Security section of ferry-run(1) as being written: in ferry's own
# work area (root's, 0711), the claims of a dead worker are data: a claim folder that is a link,
# one not owned by ferry's user, one whose .origin leaves $D are left alone; a .output note that
# does not name a temporary file of the output folder is not obeyed. Only the sound claim runs.
@test "security: forged claims in ferry's own work area (link, foreign owner, origin outside, output note outside) are left alone" {
        local w
        make_dir 0775
        mkdir -m 0755 "$O"
        dead_worker_lease
        mkdir -m 0711 "$D/.ferry" "$D/.ferry/work"
        w=$D/.ferry/work/$WORKER
        mkdir -m 0711 "$w" "$w/2" "$w/3" "$w/4"
        printf '%s\n' "$LEASE" >"$w/.lease"
        chmod 0600 "$w/.lease"
        ln -s "$T/secret" "$w/1"
        chown -h "$ATT_UID:$ATT_GID" "$w/1"
        root_drop "$w/2" job2.txt
        printf '%s' ../etc >"$w/2/.origin"
        root_drop "$w/3" job3.txt
        printf '%s' "$T/secret/canary" >"$w/3/.output"
        root_drop "$w/4" job4.txt
        chown -R "$ATT_UID:$ATT_GID" "$w/4"
        take_snapshots
        start_sec --output "$O" "$D"
        wait_logged "done" "$D/job3.txt"
        stop_ferry "$T/ferry"

        assert_snapshots_unchanged
        assert_handled "$D/job3.txt"
        assert_honest "$D/.ferry/done/job3.txt" job3.txt
        [[ -L $w/1 && $(readlink "$w/1") == "$T/secret" ]]
        assert_honest "$w/2/job2.txt" job2.txt
        [[ $(cat "$w/2/.origin") == ../etc ]]
        assert_honest "$w/4/job4.txt" job4.txt
        assert_no_canary
}

@test "security: a .ferry that is the attacker's regular file: refused" {
        refusal_setup 0775
        as_att sh -c ': >"$1/.ferry"' sh "$D"
        refuse "$D/.ferry" 'not owned|[Nn]ot a (directory|folder)'
}

# --- .ferry and its folders in a state ferry did not make ----------------------------------

@test "security: a root-owned .ferry writable by others (0777): refused" {
        refusal_setup 0775
        mkdir "$D/.ferry"
        chmod 0777 "$D/.ferry"
        refuse "$D/.ferry" 'writable by'
}

@test "security: a root-owned .ferry writable by the attacker's group (0775): refused" {
        refusal_setup 0775
        mkdir "$D/.ferry"
        chown "0:$ATT_GID" "$D/.ferry"
        chmod 0775 "$D/.ferry"
        refuse "$D/.ferry" 'writable by'
}

@test "security: .ferry/work is a symbolic link to etc: refused" {
        refusal_setup 0775
        mkdir -m 0711 "$D/.ferry"
        ln -s "$T/etc" "$D/.ferry/work"
        refuse "$D/.ferry/work" 'symbolic link'
}

@test "security: .ferry/work writable by the attacker's group (0770): refused" {
        refusal_setup 0775
        mkdir -m 0711 "$D/.ferry"
        mkdir "$D/.ferry/work"
        chown "0:$ATT_GID" "$D/.ferry/work"
        chmod 0770 "$D/.ferry/work"
        refuse "$D/.ferry/work" 'writable by'
}

@test "security: .ferry/done owned by the attacker: refused" {
        refusal_setup 0775
        mkdir -m 0711 "$D/.ferry"
        mkdir -m 0700 "$D/.ferry/done"
        chown "$ATT_UID:$ATT_GID" "$D/.ferry/done"
        refuse "$D/.ferry/done" 'not owned'
}

@test "security: .ferry/done is a regular file: refused" {
        refusal_setup 0775
        mkdir -m 0711 "$D/.ferry"
        : >"$D/.ferry/done"
        chmod 0600 "$D/.ferry/done"
        refuse "$D/.ferry/done" '[Nn]ot a (directory|folder)|symbolic link|not owned|writable by'
}

@test "security: .ferry/failed writable by others (0777): refused" {
        refusal_setup 0775
        mkdir -m 0711 "$D/.ferry"
        mkdir "$D/.ferry/failed"
        chmod 0777 "$D/.ferry/failed"
        refuse "$D/.ferry/failed" 'writable by'
}

# --- configured done and failed folders ----------------------------------------------------

done_symlink() {
        refusal_setup "$1"
        as_att ln -s "$T/etc" "$D/.done"
        refuse "$D/.done" 'symbolic link' --done "$D/.done"
}

@test "security: 0775: --done is the attacker's symlink to etc: refused" {
        done_symlink 0775
}

@test "security: 1777: --done is the attacker's symlink to etc: refused" {
        done_symlink 1777
}

@test "security: --failed reached through the attacker's symlink (folder yet to be made): refused" {
        refusal_setup 0775
        as_att ln -s "$T/etc" "$D/.via"
        refuse "$D/.via" 'symbolic link' --failed "$D/.via/failed"
        [[ ! -e $T/etc/failed ]]
}

@test "security: --done owned by the attacker: refused" {
        refusal_setup 0775
        mkdir -m 0700 "$T/attdone"
        chown "$ATT_UID:$ATT_GID" "$T/attdone"
        refuse "$T/attdone" 'not owned' --done "$T/attdone"
}

@test "security: --failed writable by the attacker's group (0770): refused" {
        refusal_setup 0775
        mkdir "$T/shared"
        chown "0:$ATT_GID" "$T/shared"
        chmod 0770 "$T/shared"
        refuse "$T/shared" 'writable by' --failed "$T/shared"
}

@test "security: --done and --failed of root's, one existing (0755), one to be made: files handled once, there" {
        make_dir 0775
        mkdir -m 0755 "$T/okdone"
        att_drop "$D" ok.txt
        root_drop "$D" bad.txt
        take_snapshots
        start_sec --done "$T/okdone" --failed "$T/okfailed" "$D"
        wait_logged "done" "$D/ok.txt"
        wait_logged failed "$D/bad.txt"
        stop_ferry "$T/ferry"

        assert_handled "$D/ok.txt" "$D/bad.txt"
        assert_honest "$T/okdone/ok.txt" ok.txt
        assert_honest "$T/okfailed/bad.txt" bad.txt
        [[ -f $T/okfailed/bad.txt.ferry-error ]]
        assert_snapshots_unchanged
        assert_no_canary
}

# --- .ferry renamed away while ferry runs ---------------------------------------------------

@test "security: 0775: the attacker renames .ferry away and plants its own (done, failed -> etc): files still go to the original folders" {
        make_dir 0775
        take_snapshots
        start_sec "$D"
        wait_run_started "$T/ferry"
        att_drop "$D" ok0
        wait_logged "done" "$D/ok0"
        [[ -d $D/.ferry/done ]]

        # The group may rename root's .ferry (no sticky bit), and make its own in its place.
        as_att mv -T "$D/.ferry" "$D/.ferry-old"
        as_att mkdir "$D/.ferry"
        as_att ln -s "$T/etc" "$D/.ferry/done"
        as_att ln -s "$T/etc" "$D/.ferry/failed"
        as_att ln -s "$D/.ferry-old/work" "$D/.ferry/work"
        snapshot "$D/.ferry" >"$T/snap.planted"

        att_drop "$D" ok1
        root_drop "$D" ok2
        att_drop "$D" bad1
        wait_logged "done" "$D/ok1"
        wait_logged "done" "$D/ok2"
        wait_logged failed "$D/bad1"
        stop_ferry "$T/ferry"

        assert_snapshots_unchanged
        assert_handled "$D/ok0" "$D/ok1" "$D/ok2" "$D/bad1"
        assert_honest "$D/.ferry-old/done/ok0" ok0
        assert_honest "$D/.ferry-old/done/ok1" ok1
        assert_honest "$D/.ferry-old/done/ok2" ok2
        assert_honest "$D/.ferry-old/failed/bad1" bad1
        [[ -f $D/.ferry-old/failed/bad1.ferry-error ]]
        # The attacker's .ferry is as it made it: ferry wrote nothing into it or through it.
        snapshot "$D/.ferry" >"$T/snap.planted.after"
        assert_same_file "$T/snap.planted" "$T/snap.planted.after"
        assert_no_canary
}

@test "security: 1777: the attacker cannot rename root's .ferry away; files go to .ferry/done and failed" {
        make_dir 1777
        take_snapshots
        start_sec "$D"
        wait_run_started "$T/ferry"
        att_drop "$D" ok0
        wait_logged "done" "$D/ok0"
        att_cannot mv -T "$D/.ferry" "$D/.ferry-old"
        att_cannot ln -s "$T/etc" "$D/.ferry/done/etc"
        att_drop "$D" ok1
        att_drop "$D" bad1
        wait_logged "done" "$D/ok1"
        wait_logged failed "$D/bad1"
        stop_ferry "$T/ferry"

        assert_snapshots_unchanged
        assert_handled "$D/ok0" "$D/ok1" "$D/bad1"
        assert_honest "$D/.ferry/done/ok0" ok0
        assert_honest "$D/.ferry/done/ok1" ok1
        assert_honest "$D/.ferry/failed/bad1" bad1
        assert_no_canary
}

# --- a queued file's folder swapped for a symlink before the claim --------------------------

# symlinked_subfolder MODE STDIN: -r, one job; the attacker's sub/ holds a.txt and b.txt; the
# first handled blocks, so the other (the victim) is ready but not claimed. The attacker then
# renames sub to sub.old and makes sub a link to the secret folder, which holds a canary of the
# victim's name. Released, ferry must not claim, read or deliver that canary; the victim is
# still in sub.old (or was handled from there, once).
symlinked_subfolder() {
        local mode=$1 stdin=$2 first victim opts=(-r --jobs 1 --ready rename)
        make_dir "$mode"
        as_att mkdir "$D/sub"
        att_drop "$D/sub" a.txt
        att_drop "$D/sub" b.txt
        if [[ $stdin == yes ]]; then
                mkdir -m 0755 "$O"
                chown "$ATT_UID:$ATT_GID" "$O"
                opts+=(--stdin --output "$O")
        fi
        make_sec_handler first "$stdin"
        take_snapshots
        start_sec "${opts[@]}" "$D"
        wait_blocked
        first=$(<"$H/blocked")
        case $first in
        "$D/sub/a.txt") victim=b.txt ;;
        "$D/sub/b.txt") victim=a.txt ;;
        *)
                echo "the first file handled is $first, expected one of $D/sub" >&2
                return 1
                ;;
        esac
        first=${first##*/}

        as_att mv -T "$D/sub" "$D/sub.old"
        as_att ln -s "$T/secret" "$D/sub"
        release
        wait_logged "done" "$D/sub/$first"
        # A file dropped after: once it is handled, the victim's turn has passed.
        att_drop "$D" c.txt
        wait_logged "done" "$D/c.txt"
        stop_ferry "$T/ferry"

        assert_snapshots_unchanged
        assert_no_canary
        if grep -qxF "$D/sub.old/$victim" "$H/log"; then
                assert_handled "$D/sub/$first" "$D/c.txt" "$D/sub.old/$victim"
                assert_honest "$D/.ferry/done/sub.old/$victim" "$victim"
        else
                assert_handled "$D/sub/$first" "$D/c.txt"
                assert_honest "$D/sub.old/$victim" "$victim"
        fi
        assert_honest "$D/.ferry/done/sub/$first" "$first"
        assert_honest "$D/.ferry/done/c.txt" c.txt
        [[ $(readlink "$D/sub") == "$T/secret" ]]
        if [[ $stdin == yes ]]; then
                assert_honest "$O/$first" "$first"
                assert_honest "$O/c.txt" c.txt
        fi
}

@test "security: 0775, -r: a queued file's folder swapped for a symlink to the secret folder: no canary claimed" {
        symlinked_subfolder 0775 no
}

@test "security: 1777, -r: a queued file's folder swapped for a symlink to the secret folder: no canary claimed" {
        symlinked_subfolder 1777 no
}

@test "security: 0775, -r --stdin --output: a queued file's folder swapped for a symlink: no canary read or delivered" {
        symlinked_subfolder 0775 yes
}

@test "security: 1777, -r --stdin --output: a queued file's folder swapped for a symlink: no canary read or delivered" {
        symlinked_subfolder 1777 yes
}

# returned_through_symlink MODE: -r; the handler of sub/ret.txt (a name no canary has, so that a
# return through the link would succeed) runs when the attacker swaps sub for a link to the
# secret folder; at the stop (--grace 0s) the claim must not be returned through the link:
# nothing lands in the secret folder, and ret.txt is still below $D, once.
returned_through_symlink() {
        local found
        make_dir "$1"
        as_att mkdir "$D/sub"
        att_drop "$D/sub" ret.txt
        make_sec_handler ret.txt no
        take_snapshots
        start_sec -r --jobs 1 --grace 0s "$D"
        wait_blocked
        as_att mv -T "$D/sub" "$D/sub.old"
        as_att ln -s "$T/secret" "$D/sub"
        stop_ferry "$T/ferry"

        assert_snapshots_unchanged
        assert_handled "$D/sub/ret.txt"
        found=$(find "$D" -name ret.txt -type f)
        if [[ $(printf '%s\n' "$found" | grep -c .) -ne 1 ]]; then
                echo "expected ret.txt once below $D, found: ${found:-nothing}" >&2
                return 1
        fi
        assert_honest "$found" ret.txt
        assert_no_canary
}

@test "security: 0775, -r: a claim whose folder became a symlink is not returned through it at the stop" {
        returned_through_symlink 0775
}

@test "security: 1777, -r: a claim whose folder became a symlink is not returned through it at the stop" {
        returned_through_symlink 1777
}

# --- a queued file replaced by something that is not a regular file -------------------------

# not_regular MODE: --stdin --output, one job; the attacker's f1, f2 and f3 are ready; the first
# handled blocks; the attacker replaces the other two, by rename, with a symlink to the canary of
# the same name and with a FIFO. Neither reaches the handler; no canary is read or delivered.
not_regular() {
        local first others=() n
        make_dir "$1"
        mkdir -m 0755 "$O"
        chown "$ATT_UID:$ATT_GID" "$O"
        att_drop "$D" f1
        att_drop "$D" f2
        att_drop "$D" f3
        make_sec_handler first yes
        take_snapshots
        start_sec --jobs 1 --ready rename --stdin --output "$O" "$D"
        wait_blocked
        first=$(<"$H/blocked")
        first=${first##*/}
        for n in f1 f2 f3; do [[ $n == "$first" ]] || others+=("$n"); done
        ((${#others[@]} == 2)) || {
                echo "the first file handled is $first, expected one of f1 f2 f3" >&2
                return 1
        }
        as_att ln -s "$T/secret/${others[0]}" "$D/.link"
        as_att mv -T "$D/.link" "$D/${others[0]}"
        as_att mkfifo "$D/.fifo"
        as_att mv -T "$D/.fifo" "$D/${others[1]}"
        release
        wait_logged "done" "$D/$first"
        att_drop "$D" end.txt
        wait_logged "done" "$D/end.txt"
        stop_ferry "$T/ferry"

        assert_snapshots_unchanged
        assert_no_canary
        assert_handled "$D/$first" "$D/end.txt"
        assert_honest "$O/$first" "$first"
        assert_honest "$O/end.txt" end.txt
        [[ ! -e $O/${others[0]} && ! -e $O/${others[1]} ]]
}

@test "security: 0775: queued files replaced by a symlink to a canary and by a FIFO never reach the handler" {
        not_regular 0775
}

@test "security: 1777: queued files replaced by a symlink to a canary and by a FIFO never reach the handler" {
        not_regular 1777
}

# --- the attacker's output folder --------------------------------------------------------

# output_link MODE: the attacker owns the --output folder and has planted OUT/ok.txt, a link to
# $T/etc/passwd, before ok.txt is handled: the output replaces the link, it is not written
# through it.
output_link() {
        make_dir "$1"
        mkdir -m 0755 "$O"
        chown "$ATT_UID:$ATT_GID" "$O"
        as_att ln -s "$T/etc/passwd" "$O/ok.txt"
        att_drop "$D" ok.txt
        make_sec_handler "" yes
        take_snapshots
        start_sec --stdin --output "$O" "$D"
        wait_logged "done" "$D/ok.txt"
        stop_ferry "$T/ferry"

        assert_snapshots_unchanged
        assert_handled "$D/ok.txt"
        assert_honest "$O/ok.txt" ok.txt
        assert_no_canary
}

@test "security: 0775: a link the attacker planted at the output's name in its --output folder is not written through" {
        output_link 0775
}

@test "security: 1777: a link the attacker planted at the output's name in its --output folder is not written through" {
        output_link 1777
}

# --- modes and privacy ---------------------------------------------------------------------

@test "security: modes of .ferry, work area, notes, done and failed; the attacker can list or read none of it" {
        local w c
        make_dir 0775
        mkdir -m 0755 "$O"
        as_att mkdir "$D/sub"
        att_drop "$D/sub" x.txt
        att_drop "$D" ok.txt
        root_drop "$D" bad.txt
        make_sec_handler x.txt no
        take_snapshots
        start_sec -r --jobs 1 --ready rename --output "$O" "$D"
        wait_blocked

        # While x.txt's handler runs: its worker folder and claim, with all their notes.
        w=$(find "$D/.ferry/work" -mindepth 1 -maxdepth 1 -name 'run@*')
        [[ -n $w && $(printf '%s\n' "$w" | grep -c .) -eq 1 ]] || {
                echo "expected one worker folder run@* in $D/.ferry/work, found: ${w:-none}" >&2
                return 1
        }
        c=$(find "$w" -mindepth 2 -maxdepth 2 -name x.txt)
        c=${c%/x.txt}
        [[ -n $c ]] || {
                echo "x.txt is not claimed in $w" >&2
                return 1
        }
        assert_mode "$D/.ferry" 711
        assert_mode "$D/.ferry/work" 711
        assert_mode "$w" 711
        assert_mode "$c" 711
        assert_mode "$w/.lease" 600
        assert_mode "$c/.origin" 600
        assert_mode "$c/.handler" 600
        assert_mode "$c/.output" 600
        att_cannot ls "$D/.ferry"
        att_cannot ls "$D/.ferry/work"
        att_cannot ls "$w"
        att_cannot cat "$w/.lease"
        att_cannot cat "$c/.origin"
        att_cannot cat "$c/.output"

        release
        wait_logged "done" "$D/sub/x.txt"
        wait_logged "done" "$D/ok.txt"
        wait_logged failed "$D/bad.txt"
        stop_ferry "$T/ferry"

        assert_mode "$D/.ferry" 711
        assert_mode "$D/.ferry/done" 700
        assert_mode "$D/.ferry/failed" 700
        assert_mode "$D/.ferry/failed/bad.txt.ferry-error" 600
        att_cannot ls "$D/.ferry"
        att_cannot ls "$D/.ferry/done"
        att_cannot cat "$D/.ferry/done/ok.txt"
        att_cannot cat "$D/.ferry/failed/bad.txt"
        att_cannot cat "$D/.ferry/failed/bad.txt.ferry-error"
        assert_handled "$D/sub/x.txt" "$D/ok.txt" "$D/bad.txt"
        assert_honest "$D/.ferry/done/sub/x.txt" x.txt
        assert_honest "$D/.ferry/done/ok.txt" ok.txt
        assert_honest "$D/.ferry/failed/bad.txt" bad.txt
        assert_snapshots_unchanged
        assert_no_canary
}

@test "security: --keep: keep.lock and state.db are 0600 in a 0711 .ferry" {
        make_dir 0775
        att_drop "$D" ok.txt
        take_snapshots
        start_sec --keep "$D"
        wait_logged "done" "$D/ok.txt"
        stop_ferry "$T/ferry"

        assert_mode "$D/.ferry" 711
        assert_mode "$D/.ferry/keep.lock" 600
        assert_mode "$D/.ferry/state.db" 600
        att_cannot ls "$D/.ferry"
        att_cannot cat "$D/.ferry/state.db"
        assert_handled "$D/ok.txt"
        assert_honest "$D/ok.txt" ok.txt
        assert_snapshots_unchanged
        assert_no_canary
}
