#!/usr/bin/env bats
# install.bats: `make install` into a DESTDIR: the public header and pkg-config file build
# examples/libferry-example.c against the staged library, and it runs; every man page renders
# without warnings; the systemd unit and the bash completion are installed, the unit passes
# `systemd-analyze verify`, and examples/ferry.conf is a valid config; the Python package imports
# from the staged dist-packages and uses the staged library.

load helpers

REPO=$(realpath -- "$BATS_TEST_DIRNAME/../..")

# The build the tests run on (build/ or build-asan/, from $FERRY): install from it, and build
# the example with the sanitizers when the library has them.
install_stage() {
        local build
        build=$(dirname -- "$FERRY")
        BUILD_NAME=$(basename -- "$build")
        MAKE_ARGS=(BUILD="$BUILD_NAME")
        EXAMPLE_FLAGS=()
        if readelf -d "$build/libferry.so" 2>/dev/null | grep -q 'libasan'; then
                MAKE_ARGS+=(SANITIZE=1)
                EXAMPLE_FLAGS=(-fsanitize=address,undefined -fno-omit-frame-pointer)
        fi
        STAGE=$T/stage
        if ! make -C "$REPO" --no-print-directory install DESTDIR="$STAGE" PREFIX=/usr "${MAKE_ARGS[@]}" \
                >"$T/make.log" 2>&1; then
                echo "make install failed:" >&2
                tail -30 "$T/make.log" >&2
                return 1
        fi
}

@test "install: the example builds with pkg-config against the staged install and reports a ready file" {
        install_stage
        for file in usr/bin/ferry usr/include/ferry.h usr/lib/libferry.a usr/lib/libferry.so.0.1.0 \
                usr/lib/pkgconfig/ferry.pc; do
                [[ -f $STAGE/$file ]] || { echo "not installed: $file" >&2; return 1; }
        done
        # The shared library carries its soname, and the links point at it.
        readelf -d "$STAGE/usr/lib/libferry.so.0.1.0" | grep -q 'SONAME.*\[libferry\.so\.0\]'
        [[ $(readlink "$STAGE/usr/lib/libferry.so.0") == libferry.so.0.1.0 ]]
        [[ $(readlink "$STAGE/usr/lib/libferry.so") == libferry.so.0.1.0 ]]

        # Only the staged header and library: pkg-config with the stage as sysroot.
        flags=$(PKG_CONFIG_PATH=$STAGE/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$STAGE pkg-config --cflags --libs ferry)
        [[ $flags == *"-I$STAGE/usr/include"* && $flags == *"-L$STAGE/usr/lib"* ]] ||
                { echo "pkg-config gave: $flags" >&2; return 1; }
        # shellcheck disable=SC2086 # the flags are words
        cc -std=c11 -Wall -Wextra -Werror "${EXAMPLE_FLAGS[@]}" -o "$T/libferry-example" \
                "$REPO/examples/libferry-example.c" $flags -Wl,-rpath,"$STAGE/usr/lib"
        # It uses the staged library, not one installed on this machine.
        ldd "$T/libferry-example" | grep -q "libferry.so.0 => $STAGE/usr/lib/libferry.so.0"

        mkdir "$T/in"
        bg "$T/libferry-example" "$T/in" >"$T/example.out" 2>"$T/example.err"
        example=$BG_PID
        wait_for has_text "$T/example.err" "watching $T/in" 30
        printf 'payload\n' >"$T/in/report.csv"
        wait_exit "$example" 30 || { cat "$T/example.err" >&2; return 1; }
        [[ $EXIT_RC -eq 0 ]] || { echo "example exited $EXIT_RC" >&2; cat "$T/example.err" >&2; return 1; }
        printf '%s\n' "$T/in/report.csv" >"$T/want"
        assert_same_file "$T/want" "$T/example.out"
}

@test "install: every staged man page renders without warnings" {
        install_stage
        mapfile -t pages < <(find "$STAGE/usr/share/man" -type f -name '*.[0-9]' | sort)
        # ferry(1), a page per subcommand, ferry.conf(5), libferry(3).
        for name in man1/ferry.1 man1/ferry-run.1 man1/ferry-watch.1 man1/ferry-wait.1 man5/ferry.conf.5 \
                man3/libferry.3; do
                [[ -f $STAGE/usr/share/man/$name ]] || { echo "not installed: $name" >&2; return 1; }
        done
        for page in "${pages[@]}"; do
                out=$(mandoc -Tlint -W warning "$page" 2>&1) || { echo "mandoc: $out" >&2; return 1; }
                [[ -z $out ]] || { echo "mandoc: $out" >&2; return 1; }
                if command -v groff >/dev/null; then
                        out=$(groff -ww -mandoc -z -Tutf8 "$page" 2>&1)
                        [[ -z $out ]] || { echo "groff, $page: $out" >&2; return 1; }
                fi
        done
}

@test "install: the systemd unit and the bash completion; systemd-analyze verify; the example config" {
        install_stage
        unit=$STAGE/usr/lib/systemd/system/ferry@.service
        [[ -f $unit && -f $STAGE/usr/share/bash-completion/completions/ferry ]]
        # @BINDIR@ became the installed binary.
        grep -qx 'ExecStart=/usr/bin/ferry run -c /etc/ferry/%i.conf' "$unit"
        grep -qx 'Type=notify' "$unit"
        if grep -q '@[A-Z]*@' "$unit"; then
                echo "unsubstituted: $(grep '@[A-Z]*@' "$unit")" >&2
                return 1
        fi
        bash -n "$STAGE/usr/share/bash-completion/completions/ferry"

        # The example config is valid once its folders and its handlers exist.
        mkdir -p "$T/srv/example/in" "$T/srv/example/json" "$T/srv/example/out" "$T/bin"
        sed -e "s|/srv/ferry/|$T/srv/|g" -e "s|/usr/local/bin/|$T/bin/|g" "$REPO/examples/ferry.conf" >"$T/example.conf"
        local handler
        for handler in $(sed -n "s|^command = $T/bin/\([^ ]*\).*|\1|p" "$T/example.conf"); do
                printf '#!/bin/sh\n' >"$T/bin/$handler"
                chmod +x "$T/bin/$handler"
        done
        run --separate-stderr "$FERRY" run -c "$T/example.conf" --check
        assert_status 0

        if ! command -v systemd-analyze >/dev/null; then
                skip "systemd-analyze is not installed: the unit is not verified"
        fi
        # The staged unit, pointed at the staged binary (which verify requires to exist); its
        # Documentation= man pages are looked up in the stage.
        sed "s|/usr/bin/ferry|$STAGE/usr/bin/ferry|g" "$unit" >"$T/ferry@.service"
        out=$(MANPATH=$STAGE/usr/share/man systemd-analyze verify "$T/ferry@.service" 2>&1) ||
                { echo "systemd-analyze verify: $out" >&2; return 1; }
        [[ -z $out ]] || { echo "systemd-analyze verify: $out" >&2; return 1; }
}

@test "install: the Python package imports from the staged dist-packages and loads the staged library" {
        install_stage
        [[ -f $STAGE/usr/lib/python3/dist-packages/ferry/__init__.py ]] ||
                { echo "not installed: usr/lib/python3/dist-packages/ferry" >&2; return 1; }
        if [[ ${MAKE_ARGS[*]} == *SANITIZE=1* ]]; then
                skip "the library is built with AddressSanitizer, which python3 cannot load"
        fi
        printf 'data\n' >"$T/source"
        # No FERRY_LIBRARY: the package finds the library in the lib folder of its own prefix.
        run --separate-stderr env -u FERRY_LIBRARY PYTHONPATH="$STAGE/usr/lib/python3/dist-packages" python3 -c '
import sys, ferry, ferry._lib
print(ferry.__version__)
print(ferry._lib.lib._name)
print(ferry.put(sys.argv[1], sys.argv[2], marker=True))' "$T/source" "$T/target"
        assert_status 0
        [[ ${lines[0]} == 0.1.0 && ${lines[1]} == "$STAGE/usr/lib/libferry.so.0" && ${lines[2]} == "$T/target" ]] ||
                { printf 'python printed: %s\n' "${lines[@]}" "$stderr" >&2; return 1; }
        cmp "$T/source" "$T/target"
        [[ -f $T/target.done ]]

        make -C "$REPO" --no-print-directory uninstall DESTDIR="$STAGE" PREFIX=/usr >"$T/make.log" 2>&1
        [[ ! -e $STAGE/usr/lib/python3/dist-packages/ferry ]] || { echo "uninstall left the package" >&2; return 1; }
}
