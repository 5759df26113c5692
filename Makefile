# tether-bridge: make | make test | make test-asan | make bench | make demo | make fmt | make clean
BUILD   ?= build
PKGS    := libcurl jansson yaml-0.1 libmosquitto sqlite3 libmicrohttpd libcrypto libsystemd
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
CPPFLAGS += -D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
SAN     :=

LIB_SRC  := $(sort $(wildcard lib/*.c config/*.c rules/*.c) $(filter-out bridge/main.c,$(wildcard bridge/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
SIM_SRC  := $(wildcard tests/sim/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
BENCH_SRC:= $(wildcard tests/bench/*.c)
BENCH_BIN:= $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

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

deps:
	@scripts/deps.sh

build-tests: all $(UNIT_BIN) $(TOOL_BIN) $(BENCH_BIN)

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
		t_webhook_retries t_daemon_reload test_

bench: deps
	@$(MAKE) --no-print-directory build-tests
	@BUILD=$(BUILD) tests/bench/run.sh

demo: deps
	@$(MAKE) --no-print-directory all $(TOOL_BIN)
	@BUILD=$(BUILD) scripts/demo.sh

fmt:
	clang-format -i $(wildcard */*.c */*.h tests/*/*.c tests/*/*.h)

clean:
	rm -rf build build-asan build-* tether-bridge tether-sim

.PHONY: all deps build-tests test test-asan test-valgrind bench demo fmt clean
.SECONDARY:
