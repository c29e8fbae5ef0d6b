#!/usr/bin/env bats
# run_user_orphans.bats: handlers run as another user with --user, and nothing a handler
# starts outlives it, not even a daemon that left its process group.

load helpers

@test "run --user nobody: the handler runs with nobody's uid and gid" {
        require_root "switches users"
        id nobody >/dev/null 2>&1 || skip "no user nobody on this machine"
        mkdir "$T/in"
        chmod 1777 "$T"
        make_handler "$T/who.sh" 'id -u >>"'"$T"'/who"; id -g >>"'"$T"'/who"'
        chmod 755 "$T/who.sh"
        touch "$T/who" && chmod 666 "$T/who"
        printf 'x' >"$T/in/f"
        chmod 777 "$T/in"
        start_ferry "$T/run" run --user nobody --retries 0 "$T/in" -- "$T/who.sh" {}
        wait_lines "$T/who" 2 30
        stop_ferry "$T/run"
        [[ $(sed -n 1p "$T/who") == "$(id -u nobody)" ]] || { cat "$T/who" "$T/run.err" >&2; return 1; }
        [[ $(sed -n 2p "$T/who") == "$(id -g nobody)" ]]
}

@test "run: a handler's daemon (setsid, outlives the handler) is killed when the handler ends" {
        mkdir "$T/in"
        make_handler "$T/daemonize.sh" \
                "setsid sh -c 'echo \$\$ >\"$T/orphan.pid\"; exec sleep 300' &" \
                "while [ ! -s \"$T/orphan.pid\" ]; do sleep 0.01; done" \
                'exit 0'
        printf 'x' >"$T/in/f"
        start_ferry "$T/run" run "$T/in" -- "$T/daemonize.sh" {}
        wait_for file_exists "$T/in/.ferry/done/f" 30
        orphan=$(cat "$T/orphan.pid")
        wait_for proc_gone "$orphan" 10
        stop_ferry "$T/run"
}
