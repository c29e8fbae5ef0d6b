#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# run_env.bats: the environment handlers start with: only the basics of ferry's own, then
# --pass-env globs, --env-file files (systemd's EnvironmentFile= format), --env NAME=VALUE,
# later winning; FERRY_* is ferry's. The same keys in ferry.conf. Bad values are refused at
# --check with the file and line.

load helpers

# handler: writes its environment, sorted, to $T/out/NAME.env
make_handler() {
        mkdir -p "$T/out"
        printf '#!/bin/sh\nenv | LC_ALL=C sort >"%s/out/$FERRY_NAME.env.tmp" && mv "%s/out/$FERRY_NAME.env.tmp" "%s/out/$FERRY_NAME.env"\n' \
                "$T" "$T" "$T" >"$T/h.sh"
        chmod +x "$T/h.sh"
}

# the environment file every test uses: comments, quotes, escapes, a continued line, blanks
make_env_file() {
        cat >"$T/env" <<'EOF'
# comment
; also a comment

API_KEY=from-file
QUOTED="a \"b\" c"
SINGLE='x $y \z'
SPACED = trailing blanks go   
KEPT="  blanks kept  "
LONG=one\
two
EMPTY=
EOF
        printf 'CRLF="quoted"\r\nWINDOWS=edited\r\n' >>"$T/env"
}

# the variables the handler of file a got, without the shell's own (PWD, SHLVL, _)
got_env() { grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' "$T/out/a.env"; }

check_env() {
        got_env >"$T/got"
        cat >"$T/want" <<EOF
API_KEY=from-env
AWS_REGION=eu-west-1
AWS_SECRET_ACCESS_KEY=s3cr3t
CRLF=quoted
EMPTY=
EXTRA=1
FERRY_ATTEMPT=1
FERRY_NAME=a
FERRY_ORIGINAL_PATH=$T/in/a
FERRY_PATH=$(grep '^FERRY_PATH=' "$T/got" | cut -d= -f2-)
FERRY_RULE=$1
HOME=/nonexistent-home
KEPT=  blanks kept  
LANG=C
LC_TIME=C
LONG=onetwo
PATH=$PATH
QUOTED=a "b" c
SINGLE=x \$y \\z
SPACED=trailing blanks go
WINDOWS=edited
EOF
        assert_same_file "$T/want" "$T/got"
        [[ $(grep '^FERRY_PATH=' "$T/got") == "FERRY_PATH=$T/in/.ferry/work/"*/a ]]
}

@test "run: handlers get the basics, --pass-env matches, --env-file, then --env (later wins); nothing else" {
        make_handler
        make_env_file
        mkdir "$T/in"
        printf 'x\n' >"$T/in/a"
        env -i PATH="$PATH" HOME=/nonexistent-home LANG=C LC_TIME=C AWS_REGION=eu-west-1 \
                AWS_SECRET_ACCESS_KEY=s3cr3t OTHER=not-passed API_KEY=from-ferry DATABASE_URL=secret \
                "$FERRY" run --pass-env 'AWS_*' --pass-env API_KEY --env-file "$T/env" --env API_KEY=from-env \
                --env EXTRA=1 "$T/in" -- "$T/h.sh" {} >"$T/ferry" 2>"$T/ferry.err" </dev/null 3>&- &
        FERRY_PID=$!
        BG_PIDS+=("$FERRY_PID")
        wait_for file_exists "$T/out/a.env" 30
        stop_ferry "$T/ferry"
        check_env run
        refute grep -q -e '^OTHER=' -e '^DATABASE_URL=' "$T/out/a.env"
}

@test "run -c: env, pass-env and env-file in ferry.conf give the same" {
        make_handler
        make_env_file
        mkdir "$T/in"
        printf 'x\n' >"$T/in/a"
        cat >"$T/ferry.conf" <<EOF
[rule enrich]
dir = $T/in
pass-env = AWS_*
pass-env = API_KEY
env-file = $T/env
env = API_KEY=from-env
env = EXTRA=1
command = $T/h.sh {}
EOF
        env -i PATH="$PATH" HOME=/nonexistent-home LANG=C LC_TIME=C AWS_REGION=eu-west-1 \
                AWS_SECRET_ACCESS_KEY=s3cr3t OTHER=not-passed API_KEY=from-ferry \
                "$FERRY" run -c "$T/ferry.conf" >"$T/ferry" 2>"$T/ferry.err" </dev/null 3>&- &
        FERRY_PID=$!
        BG_PIDS+=("$FERRY_PID")
        wait_for file_exists "$T/out/a.env" 30
        stop_ferry "$T/ferry"
        check_env enrich
}

@test "run --check: a bad env-file line (with its number), a missing file, FERRY_* and bad names are refused" {
        mkdir "$T/in"
        printf 'GOOD=1\n\n# fine\nbad line here\n' >"$T/bad"
        run --separate-stderr "$FERRY" run --check --env-file "$T/bad" "$T/in" -- /bin/true
        assert_status 2
        [[ $stderr == *"env-file $T/bad:4: not NAME=VALUE"* ]]

        printf 'A="never closed\n' >"$T/open"
        run --separate-stderr "$FERRY" run --check --env-file "$T/open" "$T/in" -- /bin/true
        assert_status 2
        [[ $stderr == *"env-file $T/open:1: a quote is not closed"* ]]

        printf 'FERRY_PATH=/etc/passwd\n' >"$T/ours"
        run --separate-stderr "$FERRY" run --check --env-file "$T/ours" "$T/in" -- /bin/true
        assert_status 2
        [[ $stderr == *"env-file $T/ours:1: FERRY_* variables are ferry's own"* ]]

        run --separate-stderr "$FERRY" run --check --env-file "$T/missing" "$T/in" -- /bin/true
        assert_status 1
        [[ $stderr == *"env-file $T/missing: No such file or directory"* ]]

        for bad in FERRY_RULE=x 1ABC=x NOEQUALS =x 'A B=x'; do
                run --separate-stderr "$FERRY" run --check --env "$bad" "$T/in" -- /bin/true
                assert_status 2
                [[ $stderr == *"env: '$bad' is not NAME=VALUE"* ]]
        done

        run --separate-stderr "$FERRY" run --check --env A=1 --pass-env 'LC_*' "$T/in" -- /bin/true
        assert_status 0
}

@test "status: what a rule adds to its handlers' environment, values of keys, tokens, secrets and passwords hidden" {
        mkdir "$T/in"
        printf 'API_KEY=abc123\nDB_PASSWORD=hunter2\nHTTPS_PROXY=http://proxy:3128\n' >"$T/env"
        cat >"$T/ferry.conf" <<EOF
[rule enrich]
dir = $T/in
env-file = $T/env
env = MODE=fast
env = GITHUB_TOKEN=ghp_x
pass-env = AWS_*
command = /bin/true {}
EOF
        run --separate-stderr "$FERRY" status -c "$T/ferry.conf"
        assert_status 0
        echo "$output" >&3
        [[ $output == *"environment: API_KEY=(hidden: a key, token, secret or password)"* ]]
        [[ $output == *"environment: DB_PASSWORD=(hidden"* ]]
        [[ $output == *"environment: GITHUB_TOKEN=(hidden"* ]]
        [[ $output == *"environment: HTTPS_PROXY=http://proxy:3128"* ]]
        [[ $output == *"environment: MODE=fast"* ]]
        [[ $output == *"environment: AWS_* passed from ferry's own environment"* ]]
        [[ $output != *abc123* && $output != *hunter2* && $output != *ghp_x* ]]

        run --separate-stderr "$FERRY" status -c "$T/ferry.conf" --json
        assert_status 0
        [[ $output != *abc123* && $output != *hunter2* && $output != *ghp_x* ]]
        python3 -c '
import json, sys
env = json.loads(sys.argv[1])["env"]
assert {"hidden": True, "name": "API_KEY"} in env, env
assert {"hidden": False, "name": "MODE", "value": "fast"} in env, env
assert {"hidden": False, "pass": "AWS_*"} in env, env
' "$output"

        # An environment file that cannot be read: the config is refused, saying which.
        rm "$T/env"
        run --separate-stderr "$FERRY" status -c "$T/ferry.conf"
        assert_status 2
        [[ $stderr == *"rule enrich: env-file $T/env: No such file or directory"* ]]
}
