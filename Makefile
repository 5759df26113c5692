# tether-bridge: make | make test | make test-asan | make bench | make soak | make demo | make install | make fmt | make fmt-check | make clean
BUILD   ?= build
PKGS    := libcurl jansson yaml-0.1 libmosquitto sqlite3 libmicrohttpd libcrypto libsystemd yajl
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
CPPFLAGS += -D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
SAN     :=
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/tether-bridge
UNITDIR ?= $(PREFIX)/lib/systemd/system

LIB_SRC  := $(sort $(wildcard lib/*.c config/*.c rules/*.c) $(filter-out bridge/main.c,$(wildcard bridge/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
SIM_SRC  := $(wildcard tests/sim/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
BENCH_SRC:= $(wildcard tests/bench/*.c)
BENCH_BIN:= $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
# fuzz targets: libFuzzer binaries in build-fuzz/ (clang, `make fuzz`), and with the normal
# compiler one replay binary per target ($(BUILD)/fuzz/replay-NAME) that `make test` runs
# over tests/fuzz/corpus/NAME and tests/fuzz/findings/NAME (docs/internals/fuzzing.md)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay-%)
FUZZ_BUILD := build-fuzz
FUZZ_TIME ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined

all: $(BUILD)/tether-bridge $(BUILD)/tether-sim
	@ln -sf $(BUILD)/tether-bridge tether-bridge; ln -sf $(BUILD)/tether-sim tether-sim

$(BUILD)/%.o: %.c $(wildcard */*.h tests/*/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SAN) $(CPPFLAGS) -c $< -o $@

$(BUILD)/libtb.a: $(LIB_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/tether-bridge: $(BUILD)/bridge/main.o $(BUILD)/libtb.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) $^ -o $@ $(LDLIBS)

$(BUILD)/tether-sim: $(SIM_SRC:%.c=$(BUILD)/%.o) $(BUILD)/libtb.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libtb.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) $^ -o $@ $(LDLIBS) -lcmocka

$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(BUILD)/libtb.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) $^ -o $@ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(BUILD)/libtb.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) $^ -o $@ $(LDLIBS)

$(BUILD)/fuzz/replay-%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(BUILD)/libtb.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) $^ -o $@ $(LDLIBS)

$(BUILD)/fuzz/fuzz-%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/libtb.a
	@mkdir -p $(dir $@)
	$(CC) -fsanitize=fuzzer $(SAN) $^ -o $@ $(LDLIBS)

deps:
	@scripts/deps.sh

build-tests: all $(UNIT_BIN) $(TOOL_BIN) $(BENCH_BIN)
build-tests: $(FUZZ_REPLAY)

test: deps
	@$(MAKE) --no-print-directory build-tests
	@BUILD=$(BUILD) tests/run.sh

test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" build-tests
	@ln -sf build/tether-bridge tether-bridge; ln -sf build/tether-sim tether-sim
	@BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh

test-valgrind: deps
	@$(MAKE) --no-print-directory build-tests
	@BUILD=$(BUILD) VALGRIND=1 BRIDGE_WRAPPER="valgrind -q --leak-check=full \
		--errors-for-leak-kinds=definite" tests/run.sh all t_daemon_alerts t_metrics \
		t_webhook_retries t_daemon_reload t_ha_reload t_ha_restart t_webhook_order test_

# Builds every target with clang and libFuzzer into build-fuzz/ and runs each for FUZZ_TIME
# seconds over a copy of its corpus; new inputs and findings stay in build-fuzz/ (FUZZ=NAME
# runs one target). Copy a finding into tests/fuzz/findings/NAME/ to keep it replayed.
fuzz:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
		$(addprefix $(FUZZ_BUILD)/fuzz/fuzz-,$(FUZZ_NAMES))
	@BUILD=$(FUZZ_BUILD) FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run.sh $(FUZZ)

bench: deps
	@$(MAKE) --no-print-directory build-tests
	@BUILD=$(BUILD) tests/bench/run.sh

# make soak [SOAK=5m] [SEED=N]: the chaos soak (tests/soak/, docs/reliability.md)
soak: deps
	@$(MAKE) --no-print-directory build-tests
	@BUILD=$(BUILD) SOAK=$(or $(SOAK),5m) $(if $(SEED),SEED=$(SEED)) python3 tests/soak/soak.py

demo: deps
	@$(MAKE) --no-print-directory all $(TOOL_BIN)
	@# on a terminal, the demo runs as its own foreground job: Ctrl-C reaches the demo, which
	@# stops and exits 0, and not make, which would report "Interrupt" whatever the exit status
	@if [ -t 0 ]; then BUILD=$(BUILD) bash -mc 'scripts/demo.sh; exit $$?'; \
	else BUILD=$(BUILD) scripts/demo.sh; fi

# make install [PREFIX=/usr/local] [DESTDIR=]: binary, man pages, example configs, systemd unit
install: $(BUILD)/tether-bridge
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/tether-bridge $(DESTDIR)$(BINDIR)/tether-bridge
	install -m 0644 man/tether-bridge.1 $(DESTDIR)$(MANDIR)/man1/tether-bridge.1
	install -m 0644 man/tether-bridge.yaml.5 $(DESTDIR)$(MANDIR)/man5/tether-bridge.yaml.5
	install -m 0644 config/service.yaml config/example.yaml $(DESTDIR)$(DOCDIR)/
	sed 's|/usr/local/bin/tether-bridge|$(BINDIR)/tether-bridge|g' contrib/tether-bridge.service \
		>$(DESTDIR)$(UNITDIR)/tether-bridge.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/tether-bridge.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tether-bridge $(DESTDIR)$(MANDIR)/man1/tether-bridge.1 \
		$(DESTDIR)$(MANDIR)/man5/tether-bridge.yaml.5 $(DESTDIR)$(DOCDIR)/service.yaml \
		$(DESTDIR)$(DOCDIR)/example.yaml $(DESTDIR)$(UNITDIR)/tether-bridge.service
	-rmdir $(DESTDIR)$(DOCDIR)

FMT_SRC := $(wildcard */*.c */*.h tests/*/*.c tests/*/*.h)

fmt:
	clang-format -i $(FMT_SRC)

# what `make fmt` would change, as errors (exit 1); changes nothing
fmt-check: deps
	clang-format --dry-run -Werror $(FMT_SRC)

clean:
	rm -rf build build-asan build-* tether-bridge tether-sim

.PHONY: all deps build-tests test test-asan test-valgrind bench soak demo install uninstall fmt fmt-check clean
.PHONY: fuzz
.SECONDARY:
