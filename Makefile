# wksp: GNU Make build.  `make` builds lib/libwksp.a, lib/libwksp.so (with
# SONAME) and bin/wksp inside the tree.  `make test` installs missing build
# dependencies, builds and runs every test; `make test SAN=1` runs the same
# suite under ASan+UBSan (built into build/san/; build/san-clang/ with
# CC=clang-14); `make test-aarch64` cross-builds into build/aarch64/ and
# runs the suite under qemu-user.  See README.md.

VERSION       := 0.1.0
SOVERSION     := 0
PREFIX        ?= /usr/local
DESTDIR       ?=

CC            ?= cc
ifeq ($(origin CC),default)
CC            := gcc
endif

# A clang build of the sanitized suite (`make test SAN=1 CC=clang-14`, run by
# .ci/run) has its own tree: its UBSan finds what gcc's does not (a zero
# offset applied to a null pointer).
SANTAG        := $(if $(findstring clang,$(notdir $(CC))),-clang,)

ifeq ($(SAN),1)
OUT           := build/san$(SANTAG)
OPT           := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDSAN         := -fsanitize=address,undefined
else
OUT           := .
OPT           := -O2
LDSAN         :=
endif
OBJ           := build/$(if $(filter 1,$(SAN)),san$(SANTAG),rel)/obj

# A cross build (CC=aarch64-linux-gnu-gcc, as `make test-aarch64` runs it)
# has its own tree, build/<arch>/, whatever SAN says.
ARCH          := $(firstword $(subst -, ,$(shell $(CC) -dumpmachine)))
ifneq ($(ARCH),$(shell uname -m))
OUT           := build/$(ARCH)
OBJ           := build/$(ARCH)/obj
endif

WARN          := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS      += -Iinclude -Isrc -D_GNU_SOURCE -DWKSP_VERSION='"$(VERSION)"'
CFLAGS        += -std=c17 $(OPT) -g $(WARN) -fPIC -fvisibility=hidden -pthread
LDLIBS_LIB    := -llz4 -pthread
LDLIBS_TEST   := -lcrypto -llz4 -pthread

# x86-64: the content digest's XXH3 also compiled for AVX2, used on CPUs
# that have it (src/checkpt/digest_avx2.c says why).
ifneq ($(findstring x86_64,$(shell $(CC) -dumpmachine)),)
CPPFLAGS      += -DWKSP_DIGEST_AVX2
$(OBJ)/src/checkpt/digest_avx2.o: CFLAGS += -mavx2
endif

LIB_SRC       := $(sort $(wildcard src/util/*.c src/shmem/*.c src/wksp/*.c src/frame/*.c src/checkpt/*.c))
CLI_SRC       := $(sort $(wildcard src/cli/*.c))
TEST_SRC      := $(sort $(wildcard tests/*/test_*.c))
BENCH_SRC     := $(sort $(wildcard bench/bench_*.c))
FUZZ_SRC      := $(sort $(wildcard fuzz/fuzz_*.c))

LIB_OBJ       := $(LIB_SRC:%.c=$(OBJ)/%.o)
CLI_OBJ       := $(CLI_SRC:%.c=$(OBJ)/%.o)
STATIC_LIB    := $(OUT)/lib/libwksp.a
SHARED_LIB    := $(OUT)/lib/libwksp.so.$(VERSION)
CLI_BIN       := $(OUT)/bin/wksp
TEST_BIN      := $(TEST_SRC:tests/%.c=$(OUT)/build/tests/%)
BENCH_BIN     := $(BENCH_SRC:bench/%.c=$(OUT)/build/bench/%)
REPLAY_BIN    := $(FUZZ_SRC:fuzz/fuzz_%.c=$(OUT)/build/fuzz/replay_%)

.PHONY: all deps test test-build test-aarch64 bench demo fuzz install uninstall clean reliability tsan
all: $(STATIC_LIB) $(SHARED_LIB) $(CLI_BIN)

deps:
	@scripts/deps.sh

$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(STATIC_LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJ) src/libwksp.map
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libwksp.so.$(SOVERSION) -Wl,--version-script=src/libwksp.map \
	    $(LDSAN) -o $@ $(LIB_OBJ) $(LDLIBS_LIB)
	ln -sf libwksp.so.$(VERSION) $(OUT)/lib/libwksp.so.$(SOVERSION)
	ln -sf libwksp.so.$(SOVERSION) $(OUT)/lib/libwksp.so

$(CLI_BIN): $(CLI_OBJ) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDSAN) -o $@ $(CLI_OBJ) $(STATIC_LIB) $(LDLIBS_LIB)

# A test, bench or replay program is rebuilt when any header it includes changes
# (tests include internal headers and the helpers of tests/): -MMD writes
# <program>.d, included at the end.
$(OUT)/build/tests/%: tests/%.c tests/lib/test.h $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -MMD -MP -MF $@.d -o $@ $< $(STATIC_LIB) $(LDLIBS_TEST)

$(OUT)/build/bench/%: bench/%.c bench/bench_util.h $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -MMD -MP -MF $@.d -o $@ $< $(STATIC_LIB) $(LDLIBS_TEST)

# gcc replay driver: the libFuzzer target linked with fuzz/replay.c, which
# feeds it every file of its corpus (fuzz/corpus/<name>/).
$(OUT)/build/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay.c $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -MMD -MP -MF $@.d -o $@ fuzz/replay.c $< $(STATIC_LIB) $(LDLIBS_TEST)

# Fault-injection shim for the reliability tests (LD_PRELOAD; never
# sanitized: it forwards to the sanitizer's interceptors).
SHIM          := $(OUT)/build/shim/libfaultshim.so
$(SHIM): tests/reliability/faultshim.c tests/lib/faultshim.h
	@mkdir -p $(@D)
	$(CC) -std=c17 -O2 -g $(WARN) -fPIC -shared -D_GNU_SOURCE -o $@ $< -ldl

test-build: all $(TEST_BIN) $(REPLAY_BIN) $(SHIM)

test: deps
	@$(MAKE) --no-print-directory test-build
	@WKSP_BIN=$(abspath $(CLI_BIN)) tests/run.sh $(OUT)/build

# Linux aarch64 on this machine: the library, the tool and the tests
# cross-built into build/aarch64/ and run under qemu-user, as CI does
# (scripts/cross.sh: what is installed, and which tests the emulator cannot
# hold).  On an aarch64 machine `make test` is the real thing.
test-aarch64:
	@WKSP_DEPS_EXTRA="gcc-aarch64-linux-gnu qemu-user libc6:arm64 liblz4-dev:arm64 libssl-dev:arm64" scripts/deps.sh
	@$(MAKE) --no-print-directory test-build CC=aarch64-linux-gnu-gcc
	@scripts/cross.sh aarch64

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; WKSP_BIN=$(abspath $(CLI_BIN)) $$b || exit 1; done
	@echo "== $(OUT)/build/bench/bench_cli on 2 MiB pages (skipped without a hugetlbfs mount and free huge pages)"
	@WKSP_BIN=$(abspath $(CLI_BIN)) WKSP_BENCH_PAGE=huge $(OUT)/build/bench/bench_cli

# Long versions of the reliability tests, fuzzing and ThreadSanitizer; one
# figure per promise (docs/RELIABILITY.md).  FUZZ_RUNS / REL_* tune them.
reliability: deps
	@$(MAKE) --no-print-directory test-build
	@scripts/reliability.sh $(OUT)/build

tsan: deps
	@scripts/tsan.sh

# libFuzzer builds (clang): `make fuzz FUZZ_TIME=60` runs every target.
FUZZ_TIME ?= 30
fuzz: deps
	@scripts/fuzz.sh $(FUZZ_TIME) $(FUZZ_SRC)

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(abspath $(CLI_BIN))

# Installation (PREFIX, DESTDIR and the directories below may be overridden).
LIBDIR        ?= $(PREFIX)/lib
INCLUDEDIR    ?= $(PREFIX)/include
BINDIR        ?= $(PREFIX)/bin
MANDIR        ?= $(PREFIX)/share/man
PKGCONFIGDIR  ?= $(LIBDIR)/pkgconfig
BASHCOMPDIR   ?= $(PREFIX)/share/bash-completion/completions
INSTALL       ?= install

install: all
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR)/wksp $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 644 include/wksp/*.h $(DESTDIR)$(INCLUDEDIR)/wksp/
	$(INSTALL) -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/libwksp.a
	$(INSTALL) -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/libwksp.so.$(VERSION)
	ln -sf libwksp.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libwksp.so.$(SOVERSION)
	ln -sf libwksp.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libwksp.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' wksp.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/wksp.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/wksp.pc
	$(INSTALL) -m 755 $(CLI_BIN) $(DESTDIR)$(BINDIR)/wksp
	$(INSTALL) -m 644 docs/wksp.1 $(DESTDIR)$(MANDIR)/man1/wksp.1
	$(INSTALL) -m 644 docs/libwksp.3 $(DESTDIR)$(MANDIR)/man3/libwksp.3
	$(INSTALL) -m 644 completion/wksp.bash $(DESTDIR)$(BASHCOMPDIR)/wksp

uninstall:
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/wksp/,$(notdir $(wildcard include/wksp/*.h)))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/wksp 2>/dev/null
	rm -f $(DESTDIR)$(LIBDIR)/libwksp.a $(DESTDIR)$(LIBDIR)/libwksp.so \
	    $(DESTDIR)$(LIBDIR)/libwksp.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libwksp.so.$(VERSION) \
	    $(DESTDIR)$(PKGCONFIGDIR)/wksp.pc $(DESTDIR)$(BINDIR)/wksp \
	    $(DESTDIR)$(MANDIR)/man1/wksp.1 $(DESTDIR)$(MANDIR)/man3/libwksp.3 $(DESTDIR)$(BASHCOMPDIR)/wksp

clean:
	rm -rf build lib bin

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(BENCH_BIN:=.d) $(REPLAY_BIN:=.d)
