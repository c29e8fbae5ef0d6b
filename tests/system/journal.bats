#!/usr/bin/env bats
# journal.bats: when stderr is the journal ($JOURNAL_STREAM names it), each log line of
# ferry run starts with its syslog priority, which journald keeps; otherwise it does not.

load helpers

@test "journal: <N> priorities only when JOURNAL_STREAM names our stderr" {
        mkdir "$T/in"
        make_handler "$T/fail.sh" 'exit 1'
        printf x >"$T/in/a"
        : >"$T/err"
        stream="$(stat -c %d "$T/err"):$(stat -c %i "$T/err")"
        JOURNAL_STREAM=$stream "$FERRY" run --retries 0 "$T/in" -- "$T/fail.sh" {} 2>>"$T/err" &
        pid=$!
        wait_for file_exists "$T/in/.ferry/failed/a.ferry-error" 30
        kill -TERM "$pid"
        wait "$pid"
        grep -q '^<6>ferry: info ' "$T/err"
        grep -q '^<4>ferry: failed ' "$T/err"
        refute grep -v '^<[3-6]>ferry: ' "$T/err"

        # Another stream (a file that is not our stderr): plain lines.
        printf y >"$T/in/b"
        JOURNAL_STREAM=1:1 "$FERRY" run --retries 0 "$T/in" -- "$T/fail.sh" {} 2>"$T/err2" &
        pid=$!
        wait_for file_exists "$T/in/.ferry/failed/b.ferry-error" 30
        kill -TERM "$pid"
        wait "$pid"
        refute grep -q '^<' "$T/err2"
        grep -q '^ferry: failed ' "$T/err2"
}
