#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# service_metrics.bats: `ferry run --metrics-file PATH` (and `metrics-file` in [ferry]): the
# counters in the Prometheus text exposition format, replaced atomically at start, at most
# every 5 s while they change, and at stop. Checked with a strict parser written here.

load helpers

# parse_metrics FILE: parses FILE strictly as the text exposition format (version 0.0.4) and
# prints each sample as "NAME{LABELS} VALUE" (VALUE as Python's repr of the float). Fails,
# saying why, on: a line that is neither a sample nor a HELP/TYPE comment, an invalid metric or
# label name, a bad label value escape, a value that is not a float, a sample before its
# family's HELP and TYPE, a family whose lines are not together, a duplicate sample, an
# unknown type, a histogram whose buckets are not cumulative or lack +Inf, or whose +Inf
# bucket is not its _count, a negative counter, a missing final newline.
parse_metrics() {
        python3 - "$1" <<'EOF'
import math, re, sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*'
SAMPLE = re.compile(r'^(' + NAME + r')(\{(.*)\})? (\S+)( -?[0-9]+)?$')
LABEL_PAIR = re.compile(r'(' + LABEL + r')="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
TYPES = {'counter', 'gauge', 'histogram', 'summary', 'untyped'}

def fail(number, why, line=''):
    sys.exit(f'line {number}: {why}: {line!r}')

def value_of(text, number, line):
    if text in ('+Inf', '-Inf', 'NaN'):
        return float(text)
    if not re.fullmatch(r'[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?', text):
        fail(number, 'not a float value', line)
    return float(text)

data = open(sys.argv[1], 'rb').read().decode('utf-8')
if not data.endswith('\n'):
    sys.exit('no final newline')
helps, types, done_families, samples = {}, {}, set(), {}
current = None
histograms = {}

def family_of(name):
    for suffix in ('_bucket', '_sum', '_count'):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ('histogram', 'summary'):
            return name[:-len(suffix)]
    return name

for number, line in enumerate(data.split('\n')[:-1], 1):
    if line.startswith('#'):
        m = re.fullmatch(r'# (HELP|TYPE) (' + NAME + r') (.*)', line)
        if not m:
            fail(number, 'a comment that is not HELP or TYPE', line)
        kind, name, rest = m.groups()
        if name != current:
            if current:
                done_families.add(current)
            if name in done_families:
                fail(number, 'metric family not together', line)
            current = name
        if kind == 'HELP':
            if name in helps:
                fail(number, 'second HELP', line)
            if re.search(r'\\[^\\n]', rest):
                fail(number, 'bad escape in HELP', line)
            helps[name] = rest
        else:
            if name in types:
                fail(number, 'second TYPE', line)
            if rest not in TYPES:
                fail(number, 'unknown type', line)
            types[name] = rest
        continue
    m = SAMPLE.match(line)
    if not m:
        fail(number, 'not a sample line', line)
    name, _, labels_text, value_text, _ = m.groups()
    family = family_of(name)
    if family != current:
        fail(number, 'sample outside its family (or before HELP/TYPE)', line)
    if family not in helps or family not in types:
        fail(number, 'sample before its HELP and TYPE', line)
    labels = {}
    if labels_text:
        pos = 0
        while pos < len(labels_text):
            lm = LABEL_PAIR.match(labels_text, pos)
            if not lm:
                fail(number, 'bad label set', line)
            if lm.group(1) in labels:
                fail(number, 'label given twice', line)
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
    value = value_of(value_text, number, line)
    key = name + '{' + ','.join(f'{k}="{v}"' for k, v in sorted(labels.items())) + '}'
    if key in samples:
        fail(number, 'duplicate sample', line)
    samples[key] = value
    kind = types[family]
    if kind == 'counter' and not value >= 0:
        fail(number, 'negative counter', line)
    if kind == 'histogram':
        h = histograms.setdefault(family, {'buckets': [], 'sum': None, 'count': None})
        if name == family + '_bucket':
            if set(labels) != {'le'}:
                fail(number, 'a bucket needs exactly the label le', line)
            h['buckets'].append((value_of(labels['le'], number, line), value))
        elif name == family + '_sum':
            h['sum'] = value
        elif name == family + '_count':
            h['count'] = value
        else:
            fail(number, 'not a histogram sample', line)

for family, kind in types.items():
    if family not in helps:
        sys.exit(f'{family}: TYPE without HELP')
for family, h in histograms.items():
    bounds = [b for b, _ in h['buckets']]
    counts = [c for _, c in h['buckets']]
    if not bounds or bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
        sys.exit(f'{family}: buckets not in increasing order of le: {bounds}')
    if bounds[-1] != math.inf:
        sys.exit(f'{family}: no +Inf bucket')
    if any(b > a for a, b in zip(counts[1:], counts)):
        sys.exit(f'{family}: bucket counts are not cumulative: {counts}')
    if h['count'] is None or h['sum'] is None:
        sys.exit(f'{family}: _sum or _count missing')
    if counts[-1] != h['count']:
        sys.exit(f'{family}: +Inf bucket {counts[-1]} is not _count {h["count"]}')
for key, value in samples.items():
    print(key, repr(value))
EOF
}

# metric FILE SAMPLE: the value of SAMPLE (as parse_metrics prints it, such as
# 'ferry_files_done_total{}') in the parsed FILE.
metric() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

# assert_metric FILE SAMPLE VALUE
assert_metric() {
        local got
        got=$(metric "$1" "$2")
        if [[ $got != "$3" ]]; then
                echo "$2 is '$got', expected $3" >&2
                echo "--- parsed samples:" >&2
                cat -- "$1" >&2
                return 1
        fi
}

# metrics_show_done FILE N: the metrics file, as written, says N files are done.
metrics_show_done() { grep -qx "ferry_files_done_total $2" "$1" 2>/dev/null; }

@test "metrics: 30 files, 5 failing: the file parses strictly and counts 30 ready and claimed, 25 done, 5 failed" {
        D=$T/in
        M=$T/metrics/ferry.prom
        mkdir "$D" "$T/metrics"
        make_numbered "$D" ok 1 25
        make_numbered "$D" bad 1 5
        make_handler "$T/h.sh" 'case "$FERRY_NAME" in bad-*) exit 1 ;; esac'
        umask 022
        start_ferry "$T/ferry" run -j 4 --retries 0 --metrics-file "$M" "$D" -- "$T/h.sh"
        # Written at start, with nothing done yet.
        wait_for file_exists "$M" 30
        parse_metrics "$M" >"$T/start"
        assert_metric "$T/start" 'ferry_files_done_total{}' 0.0
        assert_metric "$T/start" 'ferry_watches{}' 1.0

        wait_files "$D/.ferry/done" 25 30
        wait_for has_text "$T/ferry.err" "failed [run] $D/bad-00005" 30
        [[ $(find "$D/.ferry/failed" -name 'bad-*' ! -name '*.ferry-error' | wc -l) -eq 5 ]]
        # Rewritten while ferry runs, within 5 s of the last write (not only at stop).
        wait_for metrics_show_done "$M" 25 10

        stop_ferry "$T/ferry"
        parse_metrics "$M" >"$T/parsed" || { cat -A "$M" >&2; return 1; }
        assert_metric "$T/parsed" 'ferry_files_ready_total{}' 30.0
        assert_metric "$T/parsed" 'ferry_files_claimed_total{}' 30.0
        assert_metric "$T/parsed" 'ferry_files_done_total{}' 25.0
        assert_metric "$T/parsed" 'ferry_files_failed_total{}' 5.0
        assert_metric "$T/parsed" 'ferry_handler_retries_total{}' 0.0
        assert_metric "$T/parsed" 'ferry_errors_total{}' 0.0
        assert_metric "$T/parsed" 'ferry_rescans_total{}' 0.0
        assert_metric "$T/parsed" 'ferry_queue_depth{}' 0.0
        assert_metric "$T/parsed" 'ferry_handlers_running{}' 0.0
        assert_metric "$T/parsed" 'ferry_claims_waiting{}' 0.0
        # 30 handler runs, each well under 10 s.
        assert_metric "$T/parsed" 'ferry_handler_duration_seconds_count{}' 30.0
        assert_metric "$T/parsed" 'ferry_handler_duration_seconds_bucket{le="+Inf"}' 30.0
        assert_metric "$T/parsed" 'ferry_handler_duration_seconds_bucket{le="10"}' 30.0
        # Every metric asked for is there, with its type.
        for family in ferry_files_ready_total:counter ferry_files_claimed_total:counter \
                ferry_files_done_total:counter ferry_files_failed_total:counter \
                ferry_handler_retries_total:counter ferry_rescans_total:counter ferry_errors_total:counter \
                ferry_queue_depth:gauge ferry_handlers_running:gauge ferry_claims_waiting:gauge \
                ferry_watches:gauge ferry_handler_duration_seconds:histogram; do
                grep -qx "# TYPE ${family%%:*} ${family#*:}" "$M" || { echo "no TYPE line for $family" >&2; return 1; }
        done
        # Readable by the collector's user; no temporary file left beside it.
        [[ $(stat -c %a "$M") == 644 ]]
        [[ $(find "$T/metrics" -mindepth 1 | wc -l) -eq 1 ]]
}

@test "metrics: metrics-file in [ferry]; counters go on across a SIGHUP reload; a missing folder is an error" {
        D=$T/in
        M=$T/ferry.prom
        mkdir "$D"
        write_conf() { printf '[ferry]\nmetrics-file = %s\n\n[rule %s]\ndir = %s\ncommand = true\n' "$M" "$1" "$D" >"$T/ferry.conf"; }
        write_conf first
        make_numbered "$D" a 1 3
        start_ferry "$T/ferry" run -c "$T/ferry.conf"
        wait_files "$D/.ferry/done" 3 30
        write_conf second
        kill -HUP "$FERRY_PID"
        wait_for has_text "$T/ferry.err" "$T/ferry.conf: reloaded" 30
        drop_numbered "$D" b 1 2
        wait_files "$D/.ferry/done" 5 30
        stop_ferry "$T/ferry"
        parse_metrics "$M" >"$T/parsed" || { cat -A "$M" >&2; return 1; }
        assert_metric "$T/parsed" 'ferry_files_done_total{}' 5.0
        assert_metric "$T/parsed" 'ferry_files_claimed_total{}' 5.0
        assert_metric "$T/parsed" 'ferry_handler_duration_seconds_count{}' 5.0

        # A folder that does not exist: exit 1 at once, also for --check, with the reason.
        run --separate-stderr "$FERRY" run --metrics-file "$T/nowhere/ferry.prom" --check "$D" -- true
        assert_status 1
        [[ $stderr == "ferry: metrics file $T/nowhere/ferry.prom: its folder $T/nowhere: No such file or directory" ]] ||
                { echo "got: $stderr" >&2; return 1; }
        printf '[ferry]\nmetrics-file = %s/nowhere/x.prom\n[rule r]\ndir = %s\ncommand = true\n' "$T" "$D" >"$T/bad.conf"
        run --separate-stderr "$FERRY" run -c "$T/bad.conf" --check
        assert_status 1
        [[ $stderr == *"its folder $T/nowhere"* ]] || { echo "got: $stderr" >&2; return 1; }
        # The command line wins over the file.
        run --separate-stderr "$FERRY" run -c "$T/bad.conf" --metrics-file "$T/x.prom" --check
        assert_status 0
}
