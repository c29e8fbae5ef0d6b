#!/usr/bin/env bats
# share_matrix.bats: the shared-folder matrix of issue 4, on real file servers. Host srv
# serves its folder with Samba, sshd and nfs-ganesha (NFSv3 and v4); host cli writes into it
# through each client: libsmbclient (smb), smbnetfs and sshfs (FUSE mounts), libnfs over
# NFSv3 and NFSv4. Each writer case goes into four folders of the share, each drained on srv
# by its own `ferry run` with one ready policy: auto, close, done-file, settle=3s. The
# handler records the name, size and SHA-256 of what it was handed; the outcome of every
# case x policy is compared with what the writer meant to write, and must be what the table
# below says (the lab's findings, ../shared/lab/FINDINGS.md, and ferry-watch(1)).
#
# Writer cases (5 chunks of 64 KiB, 0.3 s apart, unless said):
#   single   one open, chunks with pauses, one close
#   chunks   open / write one chunk at its offset / close, per chunk (a reopening writer)
#   killed   one open, SIGKILLed after 2 chunks; then a script writes NAME.done in place,
#            with the size and SHA-256 of the whole file (a marker written anyway)
#   rename   written as NAME.part with pauses, then renamed to NAME
#   marker   ferry put --marker through the mount; for the userspace clients the same by
#            hand: NAME.part, rename, then NAME.done with the same content ferry put writes
# Outcomes:
#   ok        handed out once, complete             partial   a partial file was handed out
#   twice     handed out complete more than once    reported  not handed out, logged as
#   held      never handed out (no marker, or the             not matching its marker
#             writer died: correct)                 late      complete, not handed out
#                                                             within the test (no close yet)
#   A|B       either, depending on timing (close with smbnetfs: its reopen after the close
#             at size 0 comes within the guard, or not on a busy machine; close with a killed
#             NFSv4 writer: nfs-ganesha closes a dead client's file when its lease ends, 60 s
#             after, and close then hands the partial file out, if the test still runs then)
#   stalled   settle only: a partial file was handed out, and the writer through a FUSE mount
#             was stalled longer than the settle time between two chunks (each chunk's write
#             is stamped, one that fails too: from the start of one to the end of the next,
#             or of itself, for the last chunk a writer got to write). That is what a
#             settle time means; it matches a cell that says ok (or partial: a killed writer).
#             A partial file without such a stall where the cell says ok is a failure.
# A writer may fail where its cell allows "partial": the file was claimed while written.
# SHARE_MATRIX_TABLE=FILE writes the markdown table to FILE; SHARE_MATRIX_DISCOVER=1 prints
# the outcomes without comparing (to refresh the table after a change).

load helpers

TOOLS_SRC=$BATS_TEST_DIRNAME/../tools
CLIENTS=(smb smbnetfs sshfs nfs3 nfs4)
CASES=(single chunks killed rename marker)
POLICIES=(auto close rename done-file settle=3s)
CHUNK=65536
CHUNKS=5
PAUSE_MS=300

# The expected outcome of each client, case and policy (in the order of POLICIES).
EXPECTED='
smb      single  ok       ok       held     held     ok
smb      chunks  partial  partial  held     held     ok
smb      killed  partial  partial  held     reported partial
smb      rename  ok       ok       ok       held     ok
smb      marker  ok       ok       ok       ok       ok
smbnetfs single  ok       ok|partial held   held     ok
smbnetfs chunks  partial  partial  held     held     ok
smbnetfs killed  partial  partial  held     reported partial
smbnetfs rename  ok       ok       ok       held     ok
smbnetfs marker  ok       ok       ok       ok       ok
sshfs    single  ok       ok       held     held     ok
sshfs    chunks  partial  partial  held     held     ok
sshfs    killed  partial  partial  held     reported partial
sshfs    rename  ok       ok       ok       held     ok
sshfs    marker  ok       ok       ok       ok       ok
nfs3     single  ok       late     held     held     ok
nfs3     chunks  ok       late     held     held     ok
nfs3     killed  partial  held     held     held     partial
nfs3     rename  ok       late     ok       held     ok
nfs3     marker  ok       late     ok       ok       ok
nfs4     single  ok       late     held     held     ok
nfs4     chunks  ok       late     held     held     ok
nfs4     killed  partial  held|partial held  reported partial
nfs4     rename  ok       late     ok       held     ok
nfs4     marker  ok       late     ok       ok       ok
'

matrix_skip() {
        local why
        why=$(hosts_missing sshfs smbnetfs ssh-keygen smbpasswd cc pkg-config python3 /usr/sbin/sshd \
                /usr/sbin/smbd /usr/bin/ganesha.nfsd /usr/sbin/rpcbind)
        [[ -z $why ]] || { echo "$why"; return; }
        pkg-config --exists smbclient libnfs || echo "libsmbclient-dev or libnfs-dev is missing"
}

setup_file() {
        local why tool p
        local -a flags
        why=$(matrix_skip)
        [[ -z $why ]] || return 0
        export TOOLS=$BATS_FILE_TMPDIR/tools
        mkdir -p "$TOOLS"
        for tool in smb-write:smbclient nfs-write:libnfs; do
                read -r -a flags <<<"$(pkg-config --cflags --libs "${tool#*:}")"
                cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -o "$TOOLS/${tool%:*}" \
                        "$TOOLS_SRC/${tool%:*}.c" "${flags[@]}"
        done
        hosts_up_file ssh,smb,nfs srv cli
        # The policies' folders exist before the clients mount the share.
        for p in "${POLICIES[@]}"; do
                mkdir "$FERRY_HOSTS/srv/share/$(folder_of "$p")"
        done
        export MNT_SSHFS MNT_SMBNETFS
        MNT_SSHFS=$("$HOSTS" mount "$FERRY_HOSTS" cli srv sshfs)
        MNT_SMBNETFS=$("$HOSTS" mount "$FERRY_HOSTS" cli srv smbnetfs)
}

teardown_file() { hosts_down_file; }

setup() {
        local why
        why=$(matrix_skip)
        [[ -z $why ]] || skip "$why"
        ferry_setup
}

teardown() {
        local p
        # ferry runs on srv: stopped by the test; this is for a failed one
        for p in "${RUN_PIDS[@]}"; do
                kill -TERM "$p" 2>/dev/null || true
        done
        ferry_teardown
}

folder_of() { echo "${1%%=*}"; }

# marker_text FILE: what ferry put --marker writes for FILE
marker_text() {
        printf 'ferry-marker 1\nsize %s\nsha256 %s\n' "$(stat -c %s "$1")" "$(sha256sum <"$1" | cut -c1-64)"
}

# stamp WORD: "WORD SECONDS" (the wall clock) appended to $STAMPS, when set
stamp() { [[ -z ${STAMPS:-} ]] || echo "$1 $(date +%s.%N)" >>"$STAMPS"; }

# slow_cat SRC [KILL_AFTER]: SRC's chunks on stdout with pauses; with KILL_AFTER, SIGKILL
# itself after that many chunks (stdout, the file, still open).
slow_cat() {
        local i rc=0
        for ((i = 0; i < CHUNKS; i++)); do
                ((i == 0)) || sleep "0.$PAUSE_MS"
                stamp start
                dd if="$1" bs=$CHUNK skip=$i count=1 status=none || rc=$?
                stamp end
                ((rc == 0)) || return "$rc"
                if [[ -n ${2:-} ]] && ((i + 1 == $2)); then
                        kill -KILL "$BASHPID"
                fi
        done
}

# write_fuse MOUNT CASE SRC NAME: the case through a FUSE mount, by local programs (the
# chunks' writes stamped in $STAMPS when set)
write_fuse() {
        local dir=$1 case=$2 src=$3 name=$4 i rc=0
        case $case in
        single) slow_cat "$src" >"$dir/$name" ;;
        chunks)
                for ((i = 0; i < CHUNKS; i++)); do
                        ((i == 0)) || sleep "0.$PAUSE_MS"
                        stamp start
                        dd if="$src" of="$dir/$name" bs=$CHUNK skip=$i seek=$i count=1 conv=notrunc status=none || rc=$?
                        stamp end
                        ((rc == 0)) || return "$rc"
                done
                ;;
        killed)
                (slow_cat "$src" 2 >"$dir/$name") || true
                marker_text "$src" >"$dir/$name.done"
                ;;
        rename)
                slow_cat "$src" >"$dir/$name.part"
                mv -- "$dir/$name.part" "$dir/$name"
                ;;
        marker) "$FERRY" put --marker --quiet "$src" "$dir/" ;;
        esac
}

# write_lib CLIENT CASE SRC FOLDER NAME: the case through a userspace client, run on cli
write_lib() {
        local client=$1 case=$2 src=$3 folder=$4 name=$5 srv
        local -a opts=(-p "$PAUSE_MS" -c "$CHUNK")
        srv=$("$HOSTS" ip "$FERRY_HOSTS" srv)
        # tool OPTION... LOCAL PATH: PATH relative to the share
        case $client in
        smb)
                tool() {
                        local -a o=("${@:1:$#-2}")
                        local i
                        for i in "${!o[@]}"; do
                                [[ ${o[i]} != -R ]] || o[i + 1]=smb://$srv/share/${o[i + 1]}
                        done
                        "$HOSTS" exec "$FERRY_HOSTS" cli env SMB_PASSWORD="$(cat "$FERRY_HOSTS/smbpass")" \
                                "$TOOLS/smb-write" "${o[@]}" "${@: -2:1}" "smb://$srv/share/${*: -1}"
                }
                ;;
        nfs3)
                tool() {
                        "$HOSTS" exec "$FERRY_HOSTS" cli "$TOOLS/nfs-write" "${@:1:$#-2}" 3 "$srv" \
                                "$FERRY_HOSTS/srv/share" "${@: -2:1}" "${@: -1}"
                }
                ;;
        nfs4)
                tool() {
                        "$HOSTS" exec "$FERRY_HOSTS" cli "$TOOLS/nfs-write" -w 2048 "${@:1:$#-2}" 4 "$srv" /share \
                                "${@: -2:1}" "${@: -1}"
                }
                ;;
        esac
        [[ $client == smb ]] || folder=/$folder
        case $case in
        single) tool "${opts[@]}" "$src" "$folder/$name" ;;
        chunks) tool -r "${opts[@]}" "$src" "$folder/$name" ;;
        killed)
                tool -k 2 "${opts[@]}" "$src" "$folder/$name" || true
                marker_text "$src" >"$T/$name.${folder#/}.done"
                tool "$T/$name.${folder#/}.done" "$folder/$name.done"
                ;;
        rename) tool "${opts[@]}" -R "$folder/$name" "$src" "$folder/$name.part" ;;
        marker)
                tool -R "$folder/$name" "$src" "$folder/$name.part"
                marker_text "$src" >"$T/$name.${folder#/}.done"
                tool -R "$folder/$name.done" "$T/$name.${folder#/}.done" "$folder/$name.done.part"
                ;;
        esac
}

# outcomes T: from $T/sources (NAME CLIENT CASE SIZE SHA256), $T/handled (FOLDER NAME SIZE
# SHA256, one line per handler run), $T/run-FOLDER.err and the writers' stamps
# $T/w/NAME-FOLDER.stamps, prints "CLIENT CASE OUTCOME..." per line, the policies in the
# order of POLICIES; writes the markdown table to $T/table.md.
outcomes() {
        python3 - "$T" "${POLICIES[@]}" <<'PY'
import collections, os, sys
t, policies = sys.argv[1], sys.argv[2:]
folders = [p.split('=')[0] for p in policies]
settle = {p.split('=')[0]: float(p.split('=')[1].rstrip('s')) for p in policies if '=' in p}

def stall(name, folder):
    # the longest time from one chunk's start to the next chunk's end, or 0
    try:
        marks = [l.split() for l in open(os.path.join(t, 'w', f'{name}-{folder}.stamps'))]
    except FileNotFoundError:
        return 0
    starts = [float(v) for w, v in marks if w == 'start']
    ends = [float(v) for w, v in marks if w == 'end']
    # from the start of one chunk to the end of the next, or of itself: a writer's last
    # chunk may be the one that stalled (and failed, its file claimed meanwhile)
    return max((e - s for s, e in [*zip(starts, ends[1:]), *zip(starts, ends)]), default=0)

sources = [l.split() for l in open(os.path.join(t, 'sources'))]
handled = collections.defaultdict(list)
if os.path.exists(os.path.join(t, 'handled')):
    for line in open(os.path.join(t, 'handled')):
        f, name, size, sha = line.split()
        handled[f, name].append((int(size), sha))
errors = {f: open(os.path.join(t, f'run-{f}.err'), errors='replace').read() for f in folders}
rows = []
for name, client, case, size, sha in sources:
    row = [client, case]
    for f in folders:
        got = handled[f, name]
        if any(h != (int(size), sha) for h in got):
            out = 'partial'
            stalled = stall(name, f) if f in settle else 0
            if stalled and stalled >= settle[f]:
                out = 'stalled'
                print(f'{name} into {f}: its writer stalled {stalled:.1f} s between two chunks', file=sys.stderr)
        elif len(got) == 1:
            out = 'ok'
        elif got:
            out = 'twice'
        elif f'/{name} does not match its done-marker' in errors[f]:
            out = 'reported'
        elif case == 'killed' or (f == 'done-file' and case != 'marker') or \
                (f == 'rename' and case in ('single', 'chunks')):
            out = 'held'
        else:
            out = 'late'
        row.append(out)
    rows.append(row)
for row in rows:
    print(' '.join(row))
with open(os.path.join(t, 'table.md'), 'w') as md:
    md.write('| client | case | ' + ' | '.join(policies) + ' |\n')
    md.write('| --- | --- |' + ' --- |' * len(policies) + '\n')
    for row in rows:
        md.write('| ' + ' | '.join(row) + ' |\n')
PY
}

# expectations_met: every cell expected to be handed out was, at least once, and every
# expected report was logged
expectations_met() {
        local client case outs i name
        while read -r client case outs; do
                [[ -n $client ]] || continue
                read -r -a outs <<<"$outs"
                name=$client-$case
                for i in "${!POLICIES[@]}"; do
                        case ${outs[i]} in
                        ok | partial | twice | ok\|partial)
                                grep -q "^$(folder_of "${POLICIES[i]}") $name " "$T/handled" 2>/dev/null || return 1
                                ;;
                        reported)
                                grep -qF "/$name does not match its done-marker" \
                                        "$T/run-$(folder_of "${POLICIES[i]}").err" || return 1
                                ;;
                        esac
                done
        done <<<"$EXPECTED"
}

# may_be_partial CLIENT-CASE-FOLDER: its cell allows a partial hand-out
may_be_partial() {
        local client case outs i
        while read -r client case outs; do
                [[ -n $client ]] || continue
                read -r -a outs <<<"$outs"
                for i in "${!POLICIES[@]}"; do
                        if [[ $1 == "$client-$case-$(folder_of "${POLICIES[i]}")" && ${outs[i]} == *partial* ]]; then
                                return 0
                        fi
                done
        done <<<"$EXPECTED"
        return 1
}

# show_cells NAMES: for each writer case named (CLIENT-CASE, one per line) and each policy,
# what it meant to write, what each handler run was handed, what its ferry run logged of it
# and its writer's stamps (seconds after its first), to tell a failure's cause from its log
show_cells() {
        local name p f
        while read -r name; do
                [[ -n $name ]] || continue
                echo "--- $name: meant $(awk -v n="$name" '$1 == n { print $4, substr($5, 1, 12) }' "$T/sources")"
                for p in "${POLICIES[@]}"; do
                        f=$(folder_of "$p")
                        echo "  $p: handed $(awk -v f="$f" -v n="$name" '$1 == f && $2 == n { printf "%s %s; ", $3, substr($4, 1, 12) }' "$T/handled" 2>/dev/null)"
                        grep -aF "/$f/$name" "$T/run-$f.err" | sed 's/^/    /'
                        [[ ! -s $T/w/$name-$f.stamps ]] ||
                                awk 'NR == 1 { t = $2 } { printf "%s%s %.3f", (NR > 1 ? ", " : "    stamps: "), $1, $2 - t } END { print "" }' \
                                        "$T/w/$name-$f.stamps"
                done
        done <<<"$1"
}

# handled_quiet S: $T/handled did not change for S seconds
handled_quiet() { file_quiet "$T/handled" "$1"; }

@test "share matrix: every client x writer case x ready policy, on Samba, sshd and nfs-ganesha" {
        local share=$FERRY_HOSTS/srv/share p f client case name w STAMPS
        RUN_PIDS=()
        make_handler "$T/handler" \
                "printf '%s %s %s %s\\n' \"\$1\" \"\$2\" \"\$(stat -c %s \"\$3\")\" \"\$(sha256sum <\"\$3\" | cut -c1-64)\" >>$T/handled"
        for p in "${POLICIES[@]}"; do
                f=$(folder_of "$p")
                # and every client sees them before it writes
                wait_for test -d "$MNT_SSHFS/$f" 10
                wait_for test -d "$MNT_SMBNETFS/$f" 10
                "$HOSTS" exec "$FERRY_HOSTS" srv "$FERRY" run --ready "$p" --name "$f" --jobs 2 "$share/$f" \
                        -- "$T/handler" "$f" '{name}' '{}' </dev/null >"$T/run-$f.out" 2>"$T/run-$f.err" 3>&- &
                RUN_PIDS+=("$!")
        done
        for p in "${POLICIES[@]}"; do
                wait_run_started "$T/run-$(folder_of "$p")"
        done

        mkdir "$T/src" "$T/w"
        for client in "${CLIENTS[@]}"; do
                for case in "${CASES[@]}"; do
                        name=$client-$case
                        head -c $((CHUNK * CHUNKS)) /dev/urandom >"$T/src/$name"
                        printf '%s %s %s %s %s\n' "$name" "$client" "$case" $((CHUNK * CHUNKS)) \
                                "$(sha256sum <"$T/src/$name" | cut -c1-64)" >>"$T/sources"
                done
        done
        local -a writers=()
        for client in "${CLIENTS[@]}"; do
                for case in "${CASES[@]}"; do
                        name=$client-$case
                        for p in "${POLICIES[@]}"; do
                                f=$(folder_of "$p")
                                STAMPS=$T/w/$name-$f.stamps
                                case $client in
                                sshfs) write_fuse "$MNT_SSHFS/$f" "$case" "$T/src/$name" "$name" ;;
                                smbnetfs) write_fuse "$MNT_SMBNETFS/$f" "$case" "$T/src/$name" "$name" ;;
                                *) write_lib "$client" "$case" "$T/src/$name" "$f" "$name" ;;
                                esac </dev/null >"$T/w/$name-$f.log" 2>&1 3>&- &
                                writers+=("$!:$name-$f:$case")
                        done
                done
        done
        local failed=() log
        for w in "${writers[@]}"; do
                IFS=: read -r p name case <<<"$w"
                if ! wait "$p" && [[ $case != killed && $case != chunks ]] && ! may_be_partial "$name"; then
                        failed+=("$name")
                fi
        done
        if ((${#failed[@]})); then
                for name in "${failed[@]}"; do
                        echo "writer $name failed:" >&2
                        cat "$T/w/$name.log" >&2
                done
                for log in "$FERRY_HOSTS"/cli/*.log "$FERRY_HOSTS"/srv/samba/log/*; do
                        [[ -f $log && -s $log ]] || continue
                        echo "--- the end of $log:" >&2
                        tail -n 15 "$log" >&2
                done
                return 1
        fi

        if [[ -n ${SHARE_MATRIX_DISCOVER:-} ]]; then
                wait_for handled_quiet 13 120
        else
                wait_for expectations_met 60 || true
                wait_for handled_quiet 3 60
        fi
        for p in "${RUN_PIDS[@]}"; do
                kill -TERM "$p"
                wait_exit "$p" 30
        done
        RUN_PIDS=()

        outcomes >"$T/outcomes" 2>"$T/stalls"
        sed 's/^/# /' "$T/table.md" "$T/stalls" >&3
        [[ -z ${SHARE_MATRIX_TABLE:-} ]] || cp "$T/table.md" "$SHARE_MATRIX_TABLE"
        [[ -z ${SHARE_MATRIX_DISCOVER:-} ]] || return 0
        awk 'NF { $1 = $1; print }' <<<"$EXPECTED" >"$T/expected"
        # a cell A|B matches A or B
        if ! awk 'NR == FNR { want[FNR] = $0; nwant = FNR; next }
                {
                        n = split(want[FNR], w, " "); split($0, g, " ")
                        bad = NF != n
                        for (i = 1; i <= n && !bad; i++)
                                if (g[i] == "stalled") {
                                        if (("|" w[i] "|") !~ /[|](ok|partial)[|]/) bad = 1
                                } else if (("|" w[i] "|") !~ ("[|]" g[i] "[|]")) bad = 1
                        if (bad) { print "< " want[FNR]; print "> " $0; failed = 1 }
                }
                END { if (FNR != nwant) failed = 1; exit failed }' "$T/expected" "$T/outcomes" >"$T/diff"; then
                echo "outcomes differ from the table (< expected, > seen):" >&2
                cat "$T/diff" >&2
                show_cells "$(sed -n 's/^> \([^ ]*\) \([^ ]*\) .*/\1-\2/p' "$T/diff")" >&2
                return 1
        fi
}
