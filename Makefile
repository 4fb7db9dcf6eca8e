# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# make            build build/sockpulse
# make run        install missing build dependencies, build, start `sockpulse` with defaults
# make test       install missing build dependencies, build, run unit and integration tests
# make test SANITIZE=1   unit and integration tests built with AddressSanitizer +
#                 UndefinedBehaviorSanitizer (the fuzz smoke, sanitized anyway, runs in make test)
# make fuzz FUZZ_SECONDS=N  build the libFuzzer targets, run each for N seconds (default 60)
# make fuzz-smoke  each fuzz target over its seeds for a fixed number of runs (make test does it)
# make valgrind    every unit test binary under valgrind (leaks and memory errors fail)
# make bench      connection-storm benchmark (numbers, not pass/fail); BENCH_ABLATE=1 make bench
#                 adds the attribution of the agent's cost to its parts (tools/bench.sh --help)
# make soak MINUTES=N   the agent under churn in namespaces for N minutes (default 10): RSS, fds,
#                 events/s, lost, log size every 10 s, and a verdict
# make install    PREFIX=/usr/local DESTDIR=

VERSION     := 0.1.0
PREFIX      ?= /usr/local
DESTDIR     ?=
SANITIZE    ?= 0

CC          ?= gcc
CLANG       ?= clang
BPFTOOL     ?= bpftool
PKG_CONFIG  ?= pkg-config

ifeq ($(SANITIZE),1)
OUT         := build/san
SANFLAGS    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
OUT         := build
SANFLAGS    :=
endif

ARCH        := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' \
			-e 's/riscv64/riscv/' -e 's/s390x/s390/' -e 's/loongarch64/loongarch/')

CFLAGS      ?= -O2 -g
CFLAGS      += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wformat=2 -Wshadow \
	       -Iinclude $(addprefix -I,$(USER_DIRS)) -I$(OUT) -DSP_VERSION='"$(VERSION)"' $(SANFLAGS)
LDFLAGS     += $(SANFLAGS)
BPF_LIBS    := -lbpf -lelf -lz
JSON_CFLAGS := $(shell $(PKG_CONFIG) --cflags json-c 2>/dev/null)
JSON_LIBS   := $(shell $(PKG_CONFIG) --libs json-c 2>/dev/null || echo -ljson-c)
# `sockpulse agent`: /metrics server and sock_diag netlink (linked into the binary only)
AGENT_LIBS  := $(shell $(PKG_CONFIG) --libs libmicrohttpd libmnl 2>/dev/null || echo -lmicrohttpd -lmnl)
# --web-config (core: the unit tests and fuzzers link it too): libyaml parses, libcrypt checks
# bcrypt hashes
WEB_LIBS    := $(shell $(PKG_CONFIG) --libs yaml-0.1 libcrypt 2>/dev/null || echo -lyaml -lcrypt)
# `sockpulse top`: ncursesw (linked into the binary only; Debian splits out libtinfo)
CURSES_LIBS := $(shell $(PKG_CONFIG) --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)
# Everything the sockpulse binary links (the attribution builds link the same)
SOCKPULSE_LIBS = $(BPF_LIBS) $(JSON_LIBS) $(WEB_LIBS) $(AGENT_LIBS) $(CURSES_LIBS) -lm

BPF_CFLAGS  := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Wno-unused-function \
	       -Iinclude -I$(OUT)

# Debian packages the build and the tests need (command or header -> package).
DEB_PKGS    := clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libcmocka-dev libjson-c-dev \
	       pkg-config iproute2 jq libbpf-tools python3 \
	       libmicrohttpd-dev libmnl-dev prometheus prometheus-alertmanager systemd libcap2-bin util-linux curl \
	       libncurses-dev tmux libclang-rt-14-dev valgrind nftables \
	       libyaml-dev libcrypt-dev openssl whois

# Userspace, by layer (ARCHITECTURE.md). The folders decide what links where:
#   core  (lib, decode, engine, output): no libbpf, no netlink, no HTTP, no curses; linked into
#         the binary, the unit tests, the fuzzers and the engine benchmark;
#   agent (kernel, cmd): the BPF loader, the ring and the socket walks, the commands and their
#         front ends; linked into the binary only.
CORE_DIRS   := lib decode engine output
AGENT_DIRS  := kernel cmd
USER_DIRS   := $(addprefix user/,$(CORE_DIRS) $(AGENT_DIRS))
USER_HDRS   := $(wildcard $(addsuffix /*.h,$(USER_DIRS)))
CORE_SRCS   := $(wildcard $(patsubst %,user/%/*.c,$(CORE_DIRS)))
AGENT_SRCS  := $(wildcard $(patsubst %,user/%/*.c,$(AGENT_DIRS)))
CORE_OBJS   := $(patsubst user/%.c,$(OUT)/obj/%.o,$(CORE_SRCS))
AGENT_OBJS  := $(patsubst user/%.c,$(OUT)/obj/%.o,$(AGENT_SRCS))

UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))

TOOL_SRCS   := $(filter-out %.bpf.c,$(wildcard tools/*.c))
TOOL_BINS   := $(patsubst tools/%.c,$(OUT)/tools/%,$(TOOL_SRCS))

.PHONY: all deps run test unit integration bench install clean format fuzz fuzz-smoke fuzz-seeds \
	valgrind

all: $(OUT)/sockpulse $(TOOL_BINS)

deps:
	@./tools/deps.sh $(DEB_PKGS)

run: deps
	@$(MAKE) --no-print-directory all
	./$(OUT)/sockpulse

# The fuzz smoke runs in the plain pass only: its targets always carry ASan + UBSan and a fixed
# seed, so the SANITIZE=1 pass would repeat it exactly (about 30 s of the CI budget).
test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS) $(if $(filter 1,$(SANITIZE)),,$(FUZZ_BINS))
	@./tests/run.sh --out $(OUT) $(if $(filter 1,$(SANITIZE)),,--fuzz $(FUZZ_OUT))

unit: $(UNIT_BINS)
	@./tests/run.sh --out $(OUT) --unit-only

integration: all
	@./tests/run.sh --out $(OUT) --integration-only

bench: deps
	@$(MAKE) --no-print-directory all $(if $(filter 1,$(BENCH_ABLATE)),ablate)
	@./tools/bench.sh --out $(OUT)

# The kernel matrix (tests/vm/): Debian's 6.1 kernels (generic, PREEMPT_RT, cloud) booted under
# qemu with this machine's / as root; `sockpulse check` and the integration tests per connect-hook
# variant (tests/vm/matrix.sh --help). VMTEST_SUBSET=ci: the short subset in the generic kernel
# only (what CI runs, `make vmtest-ci`). VMTEST_KERNELS="KVER..." picks the kernels,
# VMTEST_VARIANTS="fentry kprobe tracepoint" the variants, VMTEST_TESTS="test_..." the tests,
# VMTEST_JOBS=N how many guests run cells at once (default 1).
VM_PKGS        := qemu-system-x86 busybox-static cpio linux-image-amd64 linux-image-rt-amd64 \
		  linux-image-cloud-amd64
VMTEST_SUBSET  ?= full
VMTEST_KERNELS ?=
VMTEST_VARIANTS ?=
VMTEST_TESTS   ?=
VMTEST_JOBS    ?= 1
.PHONY: vmtest vmtest-ci
vmtest: deps
	@./tools/deps.sh $(VM_PKGS)
	@$(MAKE) --no-print-directory all
	@./tests/vm/matrix.sh --subset $(VMTEST_SUBSET) \
		$(if $(VMTEST_KERNELS),--kernels "$(VMTEST_KERNELS)") \
		$(if $(VMTEST_VARIANTS),--variants "$(VMTEST_VARIANTS)") \
		$(if $(VMTEST_TESTS),--tests "$(VMTEST_TESTS)") \
		--jobs $(VMTEST_JOBS) --out build/vm/matrix$(if $(filter ci,$(VMTEST_SUBSET)),-ci)

vmtest-ci:
	@$(MAKE) --no-print-directory vmtest VMTEST_SUBSET=ci

# Attribution builds (BENCH_ABLATE=1 make bench, or make ablate): the agent with one part of its
# BPF side compiled out, -DSP_ABLATE_NO_<PART> (bpf/sockpulse.bpf.c), in build/ablate/<part>/.
# The parts that are whole programs, and the agent's own, are switched at run time instead
# (user/engine/ablate.h). Built only when asked: the normal objects never see these macros.
ABLATE_BPF   := storage owners
ABLATE_BINS  := $(patsubst %,$(OUT)/ablate/%/sockpulse,$(ABLATE_BPF))
ABLATE_DEF    = -DSP_ABLATE_NO_$(shell echo $* | tr a-z- A-Z_)

.PHONY: ablate
ablate: $(ABLATE_BINS)

$(OUT)/ablate/%/sockpulse.bpf.o: bpf/sockpulse.bpf.c $(wildcard bpf/*.bpf.h) include/sockpulse.h $(OUT)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) $(ABLATE_DEF) -c $< -o $@.tmp && mv $@.tmp $@

$(OUT)/ablate/%/sockpulse_compat.bpf.o: bpf/sockpulse.bpf.c $(wildcard bpf/*.bpf.h) include/sockpulse.h $(OUT)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) $(ABLATE_DEF) -DSP_FD_WALK_COMPAT -c $< -o $@.tmp && mv $@.tmp $@

$(OUT)/ablate/%/sockpulse.skel.h: $(OUT)/ablate/%/sockpulse.bpf.o
	$(BPFTOOL) gen skeleton $< name sockpulse_bpf > $@.tmp && mv $@.tmp $@

$(OUT)/ablate/%/sockpulse_compat.skel.h: $(OUT)/ablate/%/sockpulse_compat.bpf.o
	$(BPFTOOL) gen skeleton $< name sockpulse_compat_bpf > $@.tmp && mv $@.tmp $@

# The loader is the only object that includes the skeletons: its directory goes first.
$(OUT)/ablate/%/loader.o: user/kernel/loader.c $(USER_HDRS) include/sockpulse.h \
		$(OUT)/ablate/%/sockpulse.skel.h $(OUT)/ablate/%/sockpulse_compat.skel.h
	$(CC) -I$(@D) $(CFLAGS) $(JSON_CFLAGS) -c $< -o $@

$(OUT)/ablate/%/sockpulse: $(OUT)/ablate/%/loader.o $(filter-out $(OUT)/obj/kernel/loader.o,$(AGENT_OBJS)) \
		$(CORE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(SOCKPULSE_LIBS)

.SECONDARY: $(foreach p,$(ABLATE_BPF),$(addprefix $(OUT)/ablate/$(p)/,sockpulse.bpf.o \
	sockpulse_compat.bpf.o sockpulse.skel.h sockpulse_compat.skel.h loader.o))

# Soak (numbers and a verdict, not pass/fail): tools/soak.sh --help.
MINUTES     ?= 10
.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory all
	@./tools/soak.sh --out $(OUT) --minutes $(MINUTES)

# Fuzzing (libFuzzer, clang): the core objects again, built with the fuzzer's coverage and
# ASan + UBSan into build/fuzz/, whatever SANITIZE says. tests/fuzz/fuzz_*.c are the targets;
# tests/fuzz/corpus/NAME/ their seeds (NAME: the target without "fuzz_").
FUZZ_CC        ?= clang
FUZZ_OUT       := build/fuzz
FUZZ_SECONDS   ?= 60
FUZZ_SAN       := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
		  -fno-omit-frame-pointer
FUZZ_CFLAGS    := -O1 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Iinclude \
		  $(addprefix -I,$(USER_DIRS)) -Itests/fuzz -DSP_VERSION='"$(VERSION)"' $(FUZZ_SAN) $(JSON_CFLAGS)
FUZZ_SRCS      := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS      := $(patsubst tests/fuzz/%.c,$(FUZZ_OUT)/%,$(FUZZ_SRCS))
FUZZ_CORE_OBJS := $(patsubst user/%.c,$(FUZZ_OUT)/obj/%.o,$(CORE_SRCS))

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@./tests/fuzz/fuzz.sh --out $(FUZZ_OUT) --seconds $(FUZZ_SECONDS)

fuzz-smoke: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@./tests/run.sh --out $(OUT) --fuzz $(FUZZ_OUT) --fuzz-only

# Rewrites the generated seeds of tests/fuzz/corpus/decode (see tests/fuzz/gen_seeds.c).
fuzz-seeds: $(FUZZ_OUT)/gen_seeds
	$(FUZZ_OUT)/gen_seeds tests/fuzz/corpus/decode

valgrind: deps
	@$(MAKE) --no-print-directory $(UNIT_BINS)
	@./tests/valgrind.sh $(UNIT_BINS)

$(FUZZ_OUT)/obj/%.o: user/%.c $(USER_HDRS) include/sockpulse.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# Kept between builds (make would delete them as intermediates of the pattern rule below).
.SECONDARY: $(FUZZ_CORE_OBJS) $(FUZZ_OUT)/obj/cmd/http.o

# fuzz_http drives the request handler of user/cmd/http.c (agent-only) with libmicrohttpd stubbed.
$(FUZZ_OUT)/fuzz_http: $(FUZZ_OUT)/obj/cmd/http.o

$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_CORE_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(filter %.o,$^) $(JSON_LIBS) $(WEB_LIBS) -lm

$(FUZZ_OUT)/gen_seeds: tests/fuzz/gen_seeds.c include/sockpulse.h
	@mkdir -p $(@D)
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Iinclude -o $@ $<

$(OUT)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUT)/sockpulse.bpf.o: bpf/sockpulse.bpf.c $(wildcard bpf/*.bpf.h) include/sockpulse.h $(OUT)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp && mv $@.tmp $@

$(OUT)/sockpulse.skel.h: $(OUT)/sockpulse.bpf.o
	$(BPFTOOL) gen skeleton $< name sockpulse_bpf > $@.tmp && mv $@.tmp $@

# The same program without the bpf_rdonly_cast() kfunc, for kernels before 6.2 (see the fd walk
# in bpf/sockpulse.bpf.c); the loader opens its bytes with the skeleton above.
$(OUT)/sockpulse_compat.bpf.o: bpf/sockpulse.bpf.c $(wildcard bpf/*.bpf.h) include/sockpulse.h $(OUT)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -DSP_FD_WALK_COMPAT -c $< -o $@.tmp && mv $@.tmp $@

$(OUT)/sockpulse_compat.skel.h: $(OUT)/sockpulse_compat.bpf.o
	$(BPFTOOL) gen skeleton $< name sockpulse_compat_bpf > $@.tmp && mv $@.tmp $@

$(OUT)/sockwalk.bpf.o: bpf/sockwalk.bpf.c $(wildcard bpf/*.bpf.h) include/sockpulse.h $(OUT)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp && mv $@.tmp $@

$(OUT)/sockwalk.skel.h: $(OUT)/sockwalk.bpf.o
	$(BPFTOOL) gen skeleton $< name sockwalk_bpf > $@.tmp && mv $@.tmp $@

$(OUT)/obj/%.o: user/%.c $(USER_HDRS) include/sockpulse.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(JSON_CFLAGS) -c $< -o $@

# Only the loader and the socket-table walk include a skeleton.
$(OUT)/obj/kernel/loader.o: $(OUT)/sockpulse.skel.h $(OUT)/sockpulse_compat.skel.h
$(OUT)/obj/kernel/sockwalk.o: $(OUT)/sockwalk.skel.h

$(OUT)/sockpulse: $(AGENT_OBJS) $(CORE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(SOCKPULSE_LIBS)

$(OUT)/tests/%: tests/unit/%.c $(CORE_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(JSON_CFLAGS) -o $@ $^ $(LDFLAGS) -lcmocka $(JSON_LIBS) $(WEB_LIBS) -lm

# The engine benchmark links the core (an explicit rule: it wins over the pattern below).
$(OUT)/tools/bench_engine: tools/bench_engine.c $(CORE_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(JSON_CFLAGS) -o $@ $^ $(LDFLAGS) $(JSON_LIBS) $(WEB_LIBS) -lm

# The benchmark's floor: a bare BPF program (tools/floor.bpf.c) and its loader.
$(OUT)/tools/floor.bpf.o: tools/floor.bpf.c tools/floor.h $(OUT)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp && mv $@.tmp $@

$(OUT)/tools/floor.skel.h: $(OUT)/tools/floor.bpf.o
	$(BPFTOOL) gen skeleton $< name floor_bpf > $@.tmp && mv $@.tmp $@

$(OUT)/tools/floor: tools/floor.c tools/floor.h $(OUT)/tools/floor.skel.h
	$(CC) $(CFLAGS) -Itools -I$(OUT)/tools -o $@ $< $(LDFLAGS) $(BPF_LIBS)

$(OUT)/tools/%: tools/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

# The systemd unit goes where systemd looks for units of this prefix ($(PREFIX)/lib/systemd/system
# is on its search path for /usr and /usr/local); UNITDIR overrides (e.g. /lib/systemd/system).
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(OUT)/sockpulse $(DESTDIR)$(PREFIX)/sbin/sockpulse
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g' tools/sockpulse.service > $(DESTDIR)$(UNITDIR)/sockpulse.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sockpulse.service
	install -m 0644 tools/sockpulse.sysusers $(DESTDIR)$(SYSUSERSDIR)/sockpulse.conf

format:
	clang-format -i bpf/*.c $(wildcard bpf/*.h) include/*.h $(wildcard user/*/*.[ch]) tests/unit/*.c tools/*.c

clean:
	rm -rf build
