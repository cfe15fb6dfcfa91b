# profleet — top-level build.  `make` builds everything into build/, `make test`
# runs every test tier, `make run` profiles this host for 10 s.

BUILD      ?= build
CC         ?= gcc
CLANG      ?= clang
BPFTOOL    ?= bpftool
ARCH       := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VERSION    := $(shell git describe --always --dirty 2>/dev/null || echo 0.1.0)

AGENT_INC  := $(patsubst %/,-I%,$(sort $(dir $(wildcard agent/*/*.h))))
WARN       := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Werror -Wno-format-truncation
ifeq ($(SANITIZE),thread)
CFLAGS     ?= -O1 -g
endif
CFLAGS     ?= -O2 -g -fno-omit-frame-pointer
CFLAGS     += -std=gnu11 $(WARN) -D_GNU_SOURCE -DPROFLEET_VERSION='"$(VERSION)"' \
	      -I$(BUILD)/gen -Icommon $(AGENT_INC) -Ibpf -Icontroller
LDLIBS     := -lbpf -lelf -ldw -llzma -lz -liberty -lwebsockets -lcurl -lcjson -lyaml \
	      -lprotobuf-c -lmicrohttpd -lcrypto -lpthread -lm
# the controller's websocket loop runs on libev's epoll (controller/server.c)
CTL_LDLIBS := -lev

ifeq ($(SANITIZE),1)
BUILD      := build/san
CFLAGS     += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=address,undefined
endif
# ThreadSanitizer: the agent, the controller and the tests, run by tests/run.sh tsan
ifeq ($(SANITIZE),thread)
BUILD      := build/tsan
CFLAGS     += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS    += -fsanitize=thread
endif

BIN        := $(BUILD)/bin
OBJ        := $(BUILD)/obj
GEN        := $(BUILD)/gen

COMMON_SRCS := $(wildcard common/*.c)
# agent/: one folder per step of the data path (sample, proc, unwind, symbolize,
# aggregate, export), plus fleet (run), record and cli
AGENT_SRCS  := $(wildcard agent/*/*.c)
PROTO_OBJS  := $(OBJ)/gen/fleet.pb-c.o $(OBJ)/gen/profile.pb-c.o $(OBJ)/gen/pyroscope_push.pb-c.o
COMMON_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(COMMON_SRCS)) $(PROTO_OBJS)
LIB_OBJS    := $(patsubst %.c,$(OBJ)/%.o,$(AGENT_SRCS)) $(COMMON_OBJS)
# the controller but its main.o: what the unit tests link
CTL_LIB_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(filter-out controller/main.c,$(wildcard controller/*.c)))
CTL_OBJS    := $(CTL_LIB_OBJS) $(OBJ)/controller/main.o
BPF_SRCS    := $(wildcard bpf/*.bpf.c)
SKELS       := $(patsubst bpf/%.bpf.c,$(GEN)/%.skel.h,$(BPF_SRCS))

UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
WORKLOAD_SRCS := $(wildcard tests/workloads/*.c)
WORKLOADS   := $(patsubst tests/workloads/%.c,$(BUILD)/workloads/%,$(WORKLOAD_SRCS))
NOFP_SRCS   := $(wildcard tests/workloads/nofp/*.c tests/workloads/nofp/*.cc)
WORKLOADS   += $(patsubst tests/workloads/nofp/%,$(BUILD)/workloads/nofp/%,$(basename $(NOFP_SRCS)))
HAVE_GO     := $(shell command -v go >/dev/null 2>&1 && echo yes)
ifeq ($(HAVE_GO),yes)
WORKLOADS   += $(BUILD)/workloads/go/hot-stripped
endif
# CPython's interpreter in a shared libpython (libpython3.11-dev)
WORKLOADS   += $(BUILD)/workloads/python/embed

# objects that print the version are built again when it changes (a new commit)
VERSION_STAMP := $(GEN)/version
$(shell mkdir -p $(GEN); [ "$$(cat $(VERSION_STAMP) 2>/dev/null)" = '$(VERSION)' ] || echo '$(VERSION)' > $(VERSION_STAMP))
VERSIONED   := $(shell grep -l 'PROFLEET_VERSION' agent/*.c agent/*/*.c controller/*.c common/*.c)
$(patsubst %.c,$(OBJ)/%.o,$(VERSIONED)): $(VERSION_STAMP)

.PHONY: all agent controller e2e e2e-node apiserver tests workloads deps test unit unit-san tsan system run clean lint bench soak fuzz fuzzers install kernels
.DELETE_ON_ERROR:
.SECONDARY:

all: agent controller tests workloads fuzzers

agent: $(BIN)/profleet-agent
controller: $(BIN)/profleet-controller

# make install [PREFIX=/usr/local]: the two programs and the kubectl plugin
PREFIX     ?= /usr/local
install: agent controller
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN)/profleet-agent $(BIN)/profleet-controller plugin/kubectl-profleet \
		$(DESTDIR)$(PREFIX)/bin/

# ---- BPF ------------------------------------------------------------------
$(GEN)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(OBJ)/bpf/%.bpf.o: bpf/%.bpf.c bpf/*.h $(GEN)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
		-I$(GEN) -Ibpf -c $< -o $@

$(GEN)/%.skel.h: $(OBJ)/bpf/%.bpf.o
	@mkdir -p $(@D)
	$(BPFTOOL) gen skeleton $< > $@

# ---- protocol -------------------------------------------------------------
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $<

$(OBJ)/gen/%.pb-c.o: $(GEN)/%.pb-c.c
	@mkdir -p $(@D)
	$(CC) $(filter-out -Wmissing-prototypes,$(CFLAGS)) -c $< -o $@

# ---- user space -----------------------------------------------------------
$(OBJ)/%.o: %.c $(SKELS) $(GEN)/fleet.pb-c.h $(GEN)/profile.pb-c.h $(GEN)/pyroscope_push.pb-c.h $(wildcard common/*.h agent/*/*.h bpf/*.h controller/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BIN)/profleet-controller: $(CTL_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(CTL_LDLIBS)

$(BIN)/profleet-agent: $(OBJ)/agent/main.o $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# ---- tests ----------------------------------------------------------------
TOOLS       := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(wildcard tests/tools/*.c))
tests: $(UNIT_BINS) $(TOOLS) $(BUILD)/tools/chartrender

$(BUILD)/tools/%: tests/tools/%.c $(OBJ)/agent/fleet/fleet_client.o $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
workloads: $(WORKLOADS)

# The chart renderer (Go text/template + sprig, as Helm renders), built offline in
# GOPATH mode from Debian's packages; Debian's sprig imports semver/v3, which
# Debian installs without a v3 folder: a symlink in our GOPATH gives it one.
GOPATH_DIR := $(abspath $(BUILD))/gopath
$(BUILD)/tools/chartrender: tests/tools/chartrender/main.go
	@mkdir -p $(@D) $(GOPATH_DIR)/src/github.com/Masterminds/semver
	ln -sfn /usr/share/gocode/src/github.com/Masterminds/semver \
		$(GOPATH_DIR)/src/github.com/Masterminds/semver/v3
	cd tests/tools/chartrender && GO111MODULE=off GOFLAGS= \
		GOPATH=$(GOPATH_DIR):/usr/share/gocode go build -o $(abspath $@) .

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB_OBJS) $(CTL_LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -Itests/unit $^ -o $@ $(LDLIBS) $(CTL_LDLIBS) -lcmocka

# Workloads keep frame pointers, in every function (-O0: gcc drops them in leaf functions
# otherwise): the frame-pointer unwinder is what this tier tests.
$(BUILD)/workloads/%: tests/workloads/%.c
	@mkdir -p $(@D)
	$(CC) -O0 -g -fno-omit-frame-pointer -pthread $< -o $@

# ... and these have none, like most code on a real node (issue: .eh_frame unwinding).
NOFP_FLAGS := -O2 -g -fomit-frame-pointer -fno-inline-functions -pthread
$(BUILD)/workloads/python/embed: tests/workloads/python/embed.c
	@mkdir -p $(@D)
	$(CC) -O1 -g $$(pkg-config --cflags python-3.11-embed) $< -o $@ \
		$$(pkg-config --libs python-3.11-embed)

$(BUILD)/workloads/nofp/%: tests/workloads/nofp/%.c
	@mkdir -p $(@D)
	$(CC) $(NOFP_FLAGS) $< -o $@

$(BUILD)/workloads/nofp/%: tests/workloads/nofp/%.cc
	@mkdir -p $(@D)
	$(CXX) $(NOFP_FLAGS) $< -o $@

# libFuzzer targets: the parsers of what comes from outside (ELF + CFI, /proc maps)
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS     := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIB_SRCS := agent/symbolize/elfsym.c agent/symbolize/elfutil.c agent/proc/rootfs.c agent/jvm/hotspot.c \
		 agent/symbolize/demangle.c agent/unwind/unwind_table.c agent/proc/procmaps.c \
		 agent/fleet/cgroups.c common/log.c common/yamljson.c common/k8s.c common/reserved_labels.c \
		 common/workq.c common/hmap.c \
		 controller/model.c $(GEN)/fleet.pb-c.c
# the controller's websocket frames and HTTP requests: every controller file but main.c
FUZZ_CTL_SRCS := $(filter-out controller/main.c controller/model.c,$(wildcard controller/*.c)) \
		 $(filter-out $(FUZZ_LIB_SRCS),$(COMMON_SRCS)) $(GEN)/profile.pb-c.c
$(BUILD)/fuzz/fuzz_frames $(BUILD)/fuzz/fuzz_http: FUZZ_EXTRA = $(FUZZ_CTL_SRCS) -lwebsockets \
	-lmicrohttpd -lcrypto $(CTL_LDLIBS)
HAVE_LIBFUZZER := $(shell echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' | \
	$(CLANG) -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null && echo yes)
ifeq ($(HAVE_LIBFUZZER)$(SANITIZE),yes)
fuzzers: $(FUZZERS)
else
fuzzers:
endif

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRCS) $(FUZZ_CTL_SRCS) $(wildcard agent/*/*.h common/*.h bpf/*.h controller/*.h)
	@mkdir -p $(@D)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -DPROFLEET_VERSION='"fuzz"' \
		-Icommon $(AGENT_INC) -Ibpf -Icontroller -I$(GEN) \
		$< $(FUZZ_LIB_SRCS) $(FUZZ_EXTRA) -o $@ -lelf -ldw -llzma -lz -liberty -lcjson -lyaml \
		-lcurl -lprotobuf-c -lpthread

fuzz: fuzzers workloads
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} PROFLEET_BUILD=$(CURDIR)/$(BUILD) sh tests/system/fuzz.sh

# Go, stripped: its names must come from .gopclntab (skipped where go is missing)
$(BUILD)/workloads/go/hot-stripped: tests/workloads/go/hot.go
	@mkdir -p $(@D)
	cd $(@D) && HOME=$(CURDIR)/$(BUILD) GOCACHE=$(CURDIR)/$(BUILD)/gocache GOPATH=$(CURDIR)/$(BUILD)/gopath \
		GO111MODULE=off GOFLAGS= GOPROXY=off go build -ldflags=-s -o hot-stripped $(CURDIR)/$<

deps:
	@sh tests/deps.sh

unit: tests
	@sh tests/run.sh unit $(BUILD)

unit-san:
	$(MAKE) SANITIZE=1 tests
	@sh tests/run.sh san

# the unit and system tiers under ThreadSanitizer (the system tier takes the plain
# build's workloads), and the e2e run with the controller under it
tsan: deps
	$(MAKE) all
	$(MAKE) SANITIZE=thread agent controller tests
	@sh e2e/build-kube.sh kube-apiserver kubectl >/dev/null
	@sh tests/run.sh tsan

test: deps
	$(MAKE) all
	$(MAKE) SANITIZE=1 tests
	$(MAKE) SANITIZE=thread agent controller tests
	@sh e2e/build-kube.sh kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl >/dev/null
	@sh tests/run.sh all $(BUILD)

run: deps agent
	@sh tests/make-run.sh $(BIN)/profleet-agent

# make soak [SOAK_MINUTES=20 SOAK_PROCS=20000]: the agent under churn (bench/soak.sh)
soak: all
	@sh bench/soak.sh

bench: all $(BUILD)/bench/fleetsim $(BUILD)/bench/exportbench $(BUILD)/bench/targetsbench
	@sh bench/overhead.sh
	@sh bench/unwind.sh
	@sh bench/python.sh
	@sh bench/jvm.sh
	@$(BUILD)/bench/targetsbench
	@sh bench/fleet.sh
	@sh bench/export.sh
	@sh bench/drain.sh

$(BUILD)/bench/exportbench: bench/exportbench.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench/targetsbench: bench/targetsbench.c $(LIB_OBJS) $(CTL_LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(CTL_LDLIBS)

$(BUILD)/bench/fleetsim: bench/fleetsim.c $(OBJ)/agent/fleet/fleet_client.o $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(CTL_LDLIBS)

# the e2e tier alone: a real kube-apiserver (built once from Debian's source
# package by e2e/build-apiserver.sh, cached outside the checkout) and etcd
apiserver:
	@sh e2e/build-kube.sh kube-apiserver kubectl >/dev/null

e2e: deps all apiserver
	@sh tests/run.sh e2e $(BUILD)

# the node tier alone: a kubelet on containerd, the chart installed from images
# built from our Dockerfiles (e2e/node.sh, e2e/images.sh); needs root
e2e-node: deps all
	@sh e2e/build-kube.sh kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl >/dev/null
	@sh tests/run.sh node $(BUILD)

# the kernel tier alone: Debian's kernels (fetched once into
# /var/cache/profleet/kernels) booted under qemu, this build run inside each
kernels: deps
	$(MAKE) all
	@sh tests/run.sh kernels $(BUILD)

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--suppress=missingIncludeSystem -Icommon $(AGENT_INC) -Ibpf -Icontroller agent common controller

clean:
	rm -rf build
