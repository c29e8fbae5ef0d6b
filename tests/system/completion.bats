#!/usr/bin/env bats
# completion.bats: the bash completion (completion/ferry) under Debian's bash-completion:
# subcommands, each subcommand's options (read from its --help), ready policies, backends,
# event lists, folders where folders go, and the handler's command after `ferry run ... --`.

load helpers

BASH_COMPLETION=/usr/share/bash-completion/bash_completion

# complete_line LINE: what completing at the end of LINE offers, sorted, one per line.
complete_line() {
        (
                cd "$T/cwd" || exit 1
                bash --norc --noprofile -c '
                        source "$1" && source "$2" || exit 1
                        PATH=$3:$PATH
                        COMP_LINE=$4
                        COMP_POINT=${#COMP_LINE}
                        read -ra COMP_WORDS <<<"$COMP_LINE"
                        [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
                        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                        COMPREPLY=()
                        _ferry ferry "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
                        printf "%s\n" "${COMPREPLY[@]}"
                ' sh "$BASH_COMPLETION" "$BATS_TEST_DIRNAME/../../completion/ferry" "$(dirname -- "$FERRY")" "$1"
        ) | sort -u
}

# assert_offers LINE WORD...: completing LINE offers exactly WORDs.
assert_offers() {
        local line=$1 got want
        shift
        got=$(complete_line "$line")
        want=$(printf '%s\n' "$@" | sort -u)
        if [[ $got != "$want" ]]; then
                echo "completing '$line' offered:" >&2
                printf '%s\n' "$got" >&2
                echo "--- expected:" >&2
                printf '%s\n' "$want" >&2
                return 1
        fi
}

setup() {
        ferry_setup
        [[ -r $BASH_COMPLETION ]] || skip "bash-completion is not installed ($BASH_COMPLETION)"
        mkdir -p "$T/cwd/inbox" "$T/cwd/outbox"
        touch "$T/cwd/notes.txt"
}

@test "completion: subcommands, options of each subcommand, and option values" {
        assert_offers 'ferry ' watch wait run put status explain pause resume retry purge history help
        assert_offers 'ferry w' watch wait
        assert_offers 'ferry run --re' --recursive --ready --require-file --retries --retry-delay
        assert_offers 'ferry run --on-folder-lost ' wait exit
        assert_offers 'ferry run --dedup ' sha256 off
        assert_offers 'ferry run --ded' --dedup --dedup-window
        assert_offers 'ferry run --me' --metrics-file
        assert_offers 'ferry put --' --marker --quiet --help
        assert_offers 'ferry watch --na' --nats --nats-creds --nats-ca
        assert_offers 'ferry watch --nats-creds no' notes.txt
        assert_offers 'ferry watch --publish '
        assert_offers 'ferry run --ready ' auto close close= rename done-file done-file= settle=
        assert_offers 'ferry run --ready=se' settle=
        assert_offers 'ferry watch --ready=done' done-file done-file=
        assert_offers 'ferry wait --backend ' auto inotify poll
        assert_offers 'ferry run --log-format ' text json
        assert_offers 'ferry watch -e create,mo' create,modify create,moved_from create,moved_to create,move
        assert_offers 'ferry help r' resume retry run
        assert_offers 'ferry run -j ' ''
}

@test "completion: folders and files where they go, the handler after --" {
        # Folders only for a watched folder and for --done; files too for wait.
        assert_offers 'ferry run ' inbox outbox
        assert_offers 'ferry watch --ready ' inbox outbox
        assert_offers 'ferry run --done ' inbox outbox
        assert_offers 'ferry wait ' inbox outbox notes.txt
        assert_offers 'ferry run -c n' notes.txt
        assert_offers 'ferry status --dir ' inbox outbox
        assert_offers 'ferry explain -c notes.txt ' inbox outbox notes.txt
        # After "--", the handler is a command, completed as bash completes commands.
        complete_line 'ferry run inbox -- mkfif' | grep -qx mkfifo
}
