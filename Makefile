# umbox - GNU make, non-recursive.
#
#   make            build everything into build/
#   make check      install test tools if missing, build, run every test
#   make run        development store under ./var, daemons on loopback
#   make asan       the whole suite under AddressSanitizer + UBSan (build/asan)
#   make fuzz       build the libFuzzer targets and run each for FUZZ_SECONDS
#   make install    DESTDIR, PREFIX
#   make deb        the Debian package in build/deb/, checked with lintian
#   make deb-check  build the package, install it into a fresh Debian root,
#                   run it there, upgrade and purge it (root; tests/pkg/run)

PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DESTDIR ?=

B       ?= build
CC      ?= cc
SAN     ?=
FUZZ_SECONDS ?= 20

PKGS    := libevent libevent_openssl libevent_pthreads openssl sqlite3 libcares inih libcrypt \
	gmime-3.0 libxml-2.0 espeak-ng libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter
ifeq ($(SAN),)
OPT     ?= -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
LDHARD  := -pie -Wl,-z,relro,-z,now
else ifeq ($(SAN),thread)
OPT     ?= -O1 -g -fno-omit-frame-pointer -fsanitize=thread -fPIE
LDHARD  := -pie -fsanitize=thread
else
OPT     ?= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -fPIE
LDHARD  := -pie -fsanitize=address,undefined
endif
CFLAGS  ?=
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN) $(OPT) -I. $(PKG_CFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS := $(LDHARD) $(LDFLAGS)
LIBS    := $(PKG_LIBS) -lpthread -lm

LIB_SRC     := $(wildcard lib/*.c)
STORE_SRC   := $(wildcard store/*.c)
ALIASES_SRC := $(wildcard aliases/*.c)
CLI_SRC     := $(wildcard cli/*.c)
SMTPD_SRC   := $(wildcard smtpd/*.c)
POP3D_SRC   := $(wildcard pop3d/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
FUZZ_SRC    := $(wildcard fuzz/fuzz_*.c)
BENCH_SRC   := $(wildcard bench/*.c)
TOOL_SRC    := $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

CORE_OBJ := $(call obj,$(ALIASES_SRC) $(STORE_SRC) $(LIB_SRC))
CORE_A   := $(B)/libumbox.a
# Each daemon's code but its main(), so unit tests and fuzz targets can link
# its parsers and sessions.
SMTPD_A  := $(B)/libsmtpd.a
POP3D_A  := $(B)/libpop3d.a
SMTPD_LIB_SRC := $(filter-out smtpd/main.c,$(SMTPD_SRC))
POP3D_LIB_SRC := $(filter-out pop3d/main.c,$(POP3D_SRC))

PROGS := $(B)/umboxctl
ifneq ($(SMTPD_SRC),)
PROGS += $(B)/umbox-smtpd
endif
ifneq ($(POP3D_SRC),)
PROGS += $(B)/umbox-pop3d
endif
UNIT_BINS  := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))
# Programs the integration tests drive (not tests themselves).
TOOL_BINS  := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(TOOL_SRC))
# Each fuzz target without libFuzzer, run over its seeds by tests/run.
REPLAY_BINS := $(patsubst fuzz/%.c,$(B)/fuzz-replay/%,$(FUZZ_SRC))

.SECONDARY:
.PHONY: all check run asan tsan fuzz fuzz-build install clean deps unit bench deb deb-check
all: $(PROGS) $(UNIT_BINS) $(BENCH_BINS) $(TOOL_BINS) $(REPLAY_BINS)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE_A): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SMTPD_A): $(call obj,$(SMTPD_LIB_SRC))
	@rm -f $@
	ar rcs $@ $^

$(POP3D_A): $(call obj,$(POP3D_LIB_SRC))
	@rm -f $@
	ar rcs $@ $^

$(B)/umboxctl: $(call obj,$(CLI_SRC)) $(CORE_A)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/umbox-smtpd: $(call obj,smtpd/main.c) $(SMTPD_A) $(CORE_A)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/umbox-pop3d: $(call obj,pop3d/main.c) $(POP3D_A) $(CORE_A)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(SMTPD_A) $(POP3D_A) $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LIBS)

$(B)/tests/tools/%: $(B)/obj/tests/tools/%.o $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/fuzz-replay/%: $(B)/obj/fuzz/%.o $(B)/obj/fuzz/replay.o $(SMTPD_A) $(POP3D_A) $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

deps:
	@scripts/install-deps

# The test runner builds first (through deps so a fresh machine gets its
# compilers and libraries), then runs unit and integration tests.
check: deps
	@$(MAKE) --no-print-directory all
	@UMBOX_BUILD=$(abspath $(B)) tests/run

asan:
	@scripts/install-deps
	@$(MAKE) --no-print-directory B=build/asan SAN=1 check

# ThreadSanitizer: the unit tests and the suites that drive many sessions,
# with 4 event loops per daemon; a race report in a daemon's log fails
# the test that started it.
tsan:
	@scripts/install-deps
	@$(MAKE) --no-print-directory B=build/tsan SAN=thread all
	@UMBOX_BUILD=$(abspath build/tsan) UMBOX_THREADS=4 \
	    TSAN_OPTIONS="second_deadlock_stack=1 history_size=4 suppressions=$(abspath tests/tsan.supp)" \
	    G_SLICE=always-malloc \
	    tests/run tests/smtpd tests/pop3d

# libFuzzer targets: clang, the core sources compiled with coverage.
FUZZ_CC    := clang
FUZZ_FLAGS := -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer-no-link,address,undefined -I. $(PKG_CFLAGS) -std=gnu11 -MMD -MP
FUZZ_OBJ   := $(patsubst %.c,build/fuzz/obj/%.o,$(ALIASES_SRC) $(STORE_SRC) $(LIB_SRC) \
	$(SMTPD_LIB_SRC) $(POP3D_LIB_SRC))
FUZZ_BINS  := $(patsubst fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -c $< -o $@

build/fuzz/fuzz_%: fuzz/fuzz_%.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@fuzz/run $(FUZZ_SECONDS) $(FUZZ_BINS)

bench: all
	@$(B)/bench/store-ingest

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/dev-run

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 755 $(PROGS) $(DESTDIR)$(SBINDIR)/
	install -m 644 docs/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 docs/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -d $(DESTDIR)$(SYSCONFDIR)/umbox
	test -e $(DESTDIR)$(SYSCONFDIR)/umbox/umbox.conf || \
	    install -m 644 etc/umbox.conf $(DESTDIR)$(SYSCONFDIR)/umbox/umbox.conf
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(BASHCOMPDIR)
	for u in umbox-smtpd umbox-pop3d; do \
	    sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		etc/systemd/$$u.service.in > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.service && \
	    chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.service || exit 1; \
	done
	install -m 644 etc/bash-completion/umboxctl $(DESTDIR)$(BASHCOMPDIR)/umboxctl

# The Debian package (scripts/build-deb): dpkg-buildpackage -us -uc -b on a
# copy of the tree in build/deb/, then lintian.  Installs its own tools.
deb:
	@scripts/build-deb

# Build the package, then install, run, upgrade and purge it in a fresh
# Debian root (tests/pkg/run); "make check" runs the same test as root.
deb-check:
	@tests/pkg/run

clean:
	rm -rf build

-include $(shell find $(B)/obj build/fuzz/obj -name '*.d' 2>/dev/null)
