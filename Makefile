# ferry: plain GNU make. `make` builds build/ferry, build/libferry.a and
# build/libferry.so; `make check` builds and runs every test; `make soak SECONDS=N` plays
# the randomized model test (tests/model/) for N seconds (default 1800).
#   WERROR=1    warnings are errors (CI)
#   SANITIZE=1  build and test with AddressSanitizer + UndefinedBehaviorSanitizer (in build-asan/)

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
# The Python package (python/ferry), where Debian's python3 looks for it; it
# finds the library in $(LIBDIR) through this path: PYTHONDIR/../../.
PYTHONDIR ?= $(LIBDIR)/python3/dist-packages

PY ?= 0

VERSION := 0.1.0
SOVERSION := 0

CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
BASEFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -fPIC $(WARNINGS)
ifeq ($(WERROR),1)
BASEFLAGS += -Werror
endif
ifeq ($(SANITIZE),1)
BUILD ?= build-asan
BASEFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
BUILD ?= build
endif

# libsqlite3: the record of handled files for rules that keep files in place.
# libnettle: SHA-256 of done-markers (ferry put --marker, the done-file policy).
# libnats: the NATS client (ferry watch --publish; fleets).
LIBS := -lsqlite3 -lnettle -lnats -lm

# The library's layers, each a folder with its own private header:
# lib/common (time, hashing, files and folders), lib/watch (the watch engine),
# lib/run (claims, handlers, the runner) and lib/fleet (NATS: publishing, and
# what workers of many hosts share through it). The include paths are the
# layering: lib/run sees of the engine only lib/watch/api/filter.h, and a file
# includes a private header of its own folder by its name alone.
LIB_SOURCES := $(wildcard lib/common/*.c lib/watch/*.c lib/run/*.c lib/fleet/*.c)
CLI_SOURCES := $(wildcard src/*.c)
UNIT_SOURCES := $(wildcard tests/unit/*.c)
LIB_OBJECTS := $(LIB_SOURCES:%.c=$(BUILD)/%.o)
CLI_OBJECTS := $(CLI_SOURCES:%.c=$(BUILD)/%.o)
UNIT_TESTS := $(UNIT_SOURCES:tests/unit/%.c=$(BUILD)/tests/unit/%)
MAN_PAGES := $(wildcard man/*.[0-9])
PYTHON_SOURCES := $(wildcard python/ferry/*.py)

.PHONY: all check soak bench demo install uninstall format format-check clean

all: $(BUILD)/ferry $(BUILD)/libferry.a $(BUILD)/libferry.so

LAYER_FLAGS_common := -Ilib/common
LAYER_FLAGS_watch := -Ilib/common -Ilib/watch/api
LAYER_FLAGS_run := -Ilib/common -Ilib/watch/api
LAYER_FLAGS_fleet := -Ilib/common
DEPFLAGS = -MMD -MP

$(BUILD)/lib/%.o: lib/%.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(LAYER_FLAGS_$(firstword $(subst /, ,$*))) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/src/%.o: src/%.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

-include $(LIB_OBJECTS:.o=.d) $(CLI_OBJECTS:.o=.d)

$(BUILD)/libferry.a: $(LIB_OBJECTS)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libferry.so.$(VERSION): $(LIB_OBJECTS) lib/libferry.map
	$(CC) -shared -Wl,-soname,libferry.so.$(SOVERSION) -Wl,--version-script=lib/libferry.map \
		$(LDFLAGS) -o $@ $(LIB_OBJECTS) $(LIBS)

$(BUILD)/libferry.so: $(BUILD)/libferry.so.$(VERSION)
	ln -sf libferry.so.$(VERSION) $(BUILD)/libferry.so.$(SOVERSION)
	ln -sf libferry.so.$(VERSION) $@

# The command links the library statically: it runs from the build tree.
$(BUILD)/ferry: $(CLI_OBJECTS) $(BUILD)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJECTS) $(BUILD)/libferry.a $(LIBS)

# Unit tests may look inside every layer.
$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libferry.a $(wildcard tests/unit/*.h lib/*/*.h lib/watch/api/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -Ilib/common -Ilib/watch/api -Ilib/watch -Ilib/run $(CFLAGS) $(LDFLAGS) -o $@ $< \
		$(BUILD)/libferry.a -lcriterion $(LIBS)

# One formatting (.clang-format, clang-format 14): make format applies it, and
# make check begins by checking that every C file follows it.
FORMAT_FILES := $(LIB_SOURCES) $(CLI_SOURCES) $(UNIT_SOURCES) \
	$(wildcard include/*.h lib/*/*.h lib/watch/api/*.h src/*.h tests/unit/*.h)

check: format-check all $(UNIT_TESTS)
	BUILD=$(BUILD) tests/run

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) || \
		{ echo 'format: the files above differ from .clang-format; make format rewrites them' >&2; exit 1; }

# The randomized model test for as long as asked (default 30 minutes): make soak SECONDS=N
soak: all
	tests/model/model.py --ferry $(BUILD)/ferry --seconds $(or $(SECONDS),1800) --reduce

bench: all
	bench/run

# PY=1: A and B in Python (examples/seed/), on the ferry package.
demo: all
	PY=$(PY) scripts/demo

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(BASHCOMPLETIONDIR)
	install -m 755 $(BUILD)/ferry $(DESTDIR)$(BINDIR)/ferry
	install -m 644 $(BUILD)/libferry.a $(DESTDIR)$(LIBDIR)/libferry.a
	install -m 755 $(BUILD)/libferry.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libferry.so.$(VERSION)
	ln -sf libferry.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libferry.so.$(SOVERSION)
	ln -sf libferry.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libferry.so
	install -m 644 include/ferry.h $(DESTDIR)$(INCLUDEDIR)/ferry.h
	for page in $(MAN_PAGES); do \
		install -m 644 $$page $(DESTDIR)$(MANDIR)/man$${page##*.}/$$(basename $$page); done
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' lib/ferry.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/ferry.pc
	sed -e 's|@BINDIR@|$(BINDIR)|g' 'systemd/ferry@.service' > '$(DESTDIR)$(SYSTEMDUNITDIR)/ferry@.service'
	chmod 644 '$(DESTDIR)$(SYSTEMDUNITDIR)/ferry@.service'
	install -m 644 completion/ferry $(DESTDIR)$(BASHCOMPLETIONDIR)/ferry
	install -d $(DESTDIR)$(PYTHONDIR)/ferry
	install -m 644 $(PYTHON_SOURCES) $(DESTDIR)$(PYTHONDIR)/ferry/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ferry $(DESTDIR)$(LIBDIR)/libferry.a $(DESTDIR)$(LIBDIR)/libferry.so* \
		$(DESTDIR)$(INCLUDEDIR)/ferry.h $(DESTDIR)$(LIBDIR)/pkgconfig/ferry.pc \
		'$(DESTDIR)$(SYSTEMDUNITDIR)/ferry@.service' $(DESTDIR)$(BASHCOMPLETIONDIR)/ferry
	for page in $(MAN_PAGES); do rm -f $(DESTDIR)$(MANDIR)/man$${page##*.}/$$(basename $$page); done
	rm -rf $(DESTDIR)$(PYTHONDIR)/ferry

format:
	clang-format -i $(FORMAT_FILES)

clean:
	rm -rf build build-asan
