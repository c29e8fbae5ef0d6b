#!/usr/bin/env bats
# subdir_race.bats: a file written into a brand-new subdirectory, before ferry can have put a
# watch on that subdirectory, is still reported, exactly once.

load helpers

@test "subdir race: 1,000 x (mkdir dN && echo x > dN/file): every dN/file ready exactly once" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch -r --ready -0 "$D"
        probe_until_seen "$D" "$T/out"

        for ((i = 1; i <= 1000; i++)); do
                mkdir "$D/d$i" && echo x >"$D/d$i/file"
        done

        wait_for has_records_besides_probes "$T/out" 1000 60 ||
                echo "only $(count_nul_besides_probes "$T/out") files reported after 60 s" >&2
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        for ((i = 1; i <= 1000; i++)); do
                printf '%s/d%d/file\0' "$D" "$i"
        done >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}

@test "subdir race: mkdir -p of nested directories with a file at every level, 200 times" {
        D=$T/in
        mkdir "$D"
        start_ferry "$T/out" watch -r --ready -0 "$D"
        probe_until_seen "$D" "$T/out"

        for ((i = 1; i <= 200; i++)); do
                mkdir -p "$D/n$i/a/b/c"
                echo 1 >"$D/n$i/top"
                echo 2 >"$D/n$i/a/b/c/deep"
                echo 3 >"$D/n$i/a/mid"
        done

        wait_for has_records_besides_probes "$T/out" 600 60 ||
                echo "only $(count_nul_besides_probes "$T/out") files reported after 60 s" >&2
        end_probe "$D" "$T/out"
        stop_ferry "$T/out"

        strip_probes_nul "$T/out" "$T/got"
        for ((i = 1; i <= 200; i++)); do
                printf '%s/n%d/top\0%s/n%d/a/b/c/deep\0%s/n%d/a/mid\0' "$D" "$i" "$D" "$i" "$D" "$i"
        done >"$T/want"
        assert_same_nul_set "$T/want" "$T/got"
}
