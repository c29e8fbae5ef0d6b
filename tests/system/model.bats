#!/usr/bin/env bats
# model.bats: the randomized model test (tests/model/model.py) for a bounded time: random
# producers, worker kills and, as root, a file system unmounted, refusing files or full, and a
# hostile uploader, against real ferry run workers;
# every invariant must hold. `make soak SECONDS=N` plays it as long as asked.

load helpers

@test "model: random producers, faults and (as root) a hostile uploader: every invariant holds" {
        command -v python3 >/dev/null || skip "needs python3"
        run python3 "$BATS_TEST_DIRNAME/../model/model.py" --ferry "$FERRY" \
                --seconds "${FERRY_MODEL_SECONDS:-45}" --reduce
        printf '# %s\n' "${lines[@]}" >&3
        [[ $status -eq 0 ]] || {
                printf '%s\n' "$output" >&2
                false
        }
}
