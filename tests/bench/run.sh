#!/bin/bash
# make bench: the micro-benchmarks (watchlist, rules, outbox), then tether-bridge end to end
# on 127.0.0.1: a 100,000-event backlog drained to a real mosquitto at QoS 1 and to a webhook
# receiver, peak RSS, the run-peers.sh workload, a busy site's steady state (every poll reads
# its lookback again) and idle RSS and CPU polling 100 zones. Figures go to stdout; the
# environment knobs are listed below and in docs/internals/performance.md.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

EVENTS=${BENCH_EVENTS:-100000}          # backlog size
ZONES=${BENCH_ZONES:-10}                # zones the backlog is spread over
HOOK_CONCURRENCY=${BENCH_HOOK_CONCURRENCY:-8}
HOOK_ORDERS=${BENCH_HOOK_ORDERS:-zone none} # one webhook drain per order
MQTT_TIMEOUT=${BENCH_MQTT_TIMEOUT:-90}  # seconds allowed for the MQTT drain
HOOK_TIMEOUT=${BENCH_HOOK_TIMEOUT:-60}  # seconds allowed for the webhook drain
IDLE_ZONES=${BENCH_IDLE_ZONES:-100}
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-25}
MICRO=${BENCH_MICRO:-1}                 # 0 skips the micro-benchmarks
PEERS_SECONDS=${BENCH_PEERS_SECONDS:-25} # measure window of the run-peers workload
STEADY_EVENTS=${BENCH_STEADY_EVENTS:-20000} # events inside the lookback, read every poll
STEADY_ZONES=${BENCH_STEADY_ZONES:-40}
STEADY_SECONDS=${BENCH_STEADY_SECONDS:-20}
# fake_api.py of ../shared/bench-peers (the run-peers.sh workload); not found: skipped
. "$ROOT/tests/bench/peers.sh"
PEERS=$(peers_find "$ROOT")

T=$(mktemp -d /tmp/tb-bench.XXXXXX)
PIDS=""
SUMMARY=""
HZ=$(getconf CLK_TCK)

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }
note() { SUMMARY="$SUMMARY$*"$'\n'; echo "$*"; }
now_ms() { date +%s%3N; }
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# stop PID: SIGTERM, then SIGKILL after 5 s
stop() {
	kill "$1" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	local p rest=""
	for p in $PIDS; do [ "$p" = "$1" ] || rest="$rest $p"; done
	PIDS=$rest
}
# cpu_ticks PID: utime + stime of the whole process
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# status_kb PID FIELD: VmHWM, VmRSS, ... in kB
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }
mb() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }
# field NAME LINE: the value of NAME=... in a key=value line
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

for b in tether-bridge tether-sim tools/freeport bench/sub_count bench/hook_count bench/rss_floor bench/bench_fetch; do
	[ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: run make BUILD=$BUILD build-tests"
done

echo "bench: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# sim_start NAME ARGS...: a tether-sim with ARGS (zones, backlog), logging to sim-NAME.log;
# sets SIM_PID and SIM_PORT
sim_start() {
	local name=$1
	shift
	rm -f "$T/sim.port"
	"$BUILD/tether-sim" --port 0 --port-file "$T/sim.port" --quiet "$@" >"$T/sim-$name.log" 2>&1 &
	SIM_PID=$!
	PIDS="$PIDS $SIM_PID"
	wait_file "$T/sim.port" || die "tether-sim did not start: $(tail -n 3 "$T/sim-$name.log")"
	SIM_PORT=$(cat "$T/sim.port")
}

# ---- micro-benchmarks ----------------------------------------------------------------

if [ "$MICRO" = 1 ]; then
	for b in bench_watchlist bench_rules bench_store; do
		[ -x "$BUILD/bench/$b" ] || die "$BUILD/bench/$b is missing"
		echo
		echo "== $b"
		"$BUILD/bench/$b" | tee "$T/$b.out" || die "$b failed"
	done
fi

# ---- end to end: the backlog drains ---------------------------------------------------

echo
echo "== end to end: $EVENTS-event backlog over $ZONES zones, tether-sim -> tether-bridge -> peers, 127.0.0.1"
sim_start backlog --zones "$ZONES" --backlog "$EVENTS" --backlog-span 1h --seed 42

MQTT_PORT=$("$BUILD/tools/freeport")
METRICS_PORT=$("$BUILD/tools/freeport")
# max_queued_messages 0: a subscriber that falls behind must not lose QoS 1 messages
cat >"$T/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 100
CONF
/usr/sbin/mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
MQTT_PID=$!
PIDS="$PIDS $MQTT_PID"
for _ in $(seq 100); do port_open "$MQTT_PORT" && break; sleep 0.05; done
port_open "$MQTT_PORT" || die "mosquitto did not start"

# cfg_head FILE NAME SIM_PORT INTERVAL: the common head of a bridge config. The lookback
# covers the whole backlog span (a first start polls [now - lookback, now]); the interval is
# longer than a drain, so the measure is one pass, not repeated polls of the same window.
cfg_head() {
	cat >"$1" <<CFG
tether: {base_url: "http://127.0.0.1:$3", insecure: true, access_token: sim-static-token, timeout: 60s}
poll: {interval: $4, lookback: 2h, concurrency: 8}
state_dir: $T/state-$2
delivery: {max_outbox: 1000000}
log: {level: warn}
metrics: {listen: "127.0.0.1:$METRICS_PORT"}
CFG
}

# drain NAME LABEL OUT COUNTER_PID: runs the bridge with $T/NAME.yaml until the counter
# (sub_count or hook_count, already started, writing OUT) has exited, then prints the
# figures. START (wall ms) is set by the caller just before.
drain() {
	local name=$1 label=$2 out=$3 counter=$4 bpid hwm ticks line got last first secs rate loglines tend fetched queued m c q rss
	"$BUILD/tether-bridge" run -c "$T/$name.yaml" >"$T/bridge-$name.log" 2>&1 &
	bpid=$!
	PIDS="$PIDS $bpid"
	fetched=""
	queued=""
	while kill -0 "$counter" 2>/dev/null; do
		kill -0 "$bpid" 2>/dev/null || break
		if [ -z "$queued" ]; then
			# the phases, from /metrics: API answers in (poll cycle 1 done), all queued
			m=$(curl -sf --max-time 1 "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null)
			c=$(echo "$m" | awk '$1 == "tether_bridge_poll_cycles_total" { print $2 }')
			q=$(echo "$m" | awk '$1 == "tether_bridge_outbox_queued_total" { print $2 }')
			[ -z "$fetched" ] && [ "${c:-0}" -ge 1 ] 2>/dev/null && fetched=$(now_ms)
			[ "${q:-0}" -ge "$EVENTS" ] 2>/dev/null && queued=$(now_ms)
		fi
		sleep 0.2
	done
	wait "$counter" 2>/dev/null
	tend=$(now_ms)
	loglines=$(wc -l <"$T/bridge-$name.log")
	hwm=$(status_kb "$bpid" VmHWM)
	rss=$(status_kb "$bpid" VmRSS)
	ticks=$(cpu_ticks "$bpid")
	kill -0 "$bpid" 2>/dev/null || echo "bench: the bridge exited early:" \
		"$(tail -n 5 "$T/bridge-$name.log")"
	stop "$bpid"
	line=$(cat "$out")
	got=$(field count "$line")
	first=$(field first_ms "$line")
	last=$(field last_ms "$line")
	got=${got:-0}
	if [ "$got" -ge "$EVENTS" ]; then
		secs=$(awk -v a="$START" -v b="$last" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
		rate=$(awk -v n="$got" -v a="$START" -v b="$last" 'BEGIN { printf "%.0f", n * 1000 / (b - a) }')
		note "e2e drain: $EVENTS events -> $label: $rate msg/s ($secs s), peak RSS $(mb "$hwm") MB"
	else
		secs=$(awk -v a="$START" -v b="$tend" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
		rate=$(awk -v n="$got" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
		note "e2e drain: $EVENTS events -> $label: INCOMPLETE, $got delivered in $secs s ($rate msg/s), peak RSS $(mb "$hwm") MB"
	fi
	if [ "$got" -gt 0 ]; then
		awk -v s="$START" -v a="$first" -v b="$last" -v n="$got" -v t="$ticks" -v hz="$HZ" -v r="${rss:-0}" 'BEGIN {
			printf "  first delivery %.1f s after the bridge started (fetch, normalise, rules, outbox);",
				(a - s) / 1000
			if (b > a)
				printf " then %.0f msg/s from first to last;", (n - 1) * 1000 / (b - a)
			printf " bridge CPU %.1f s (%.0f us/message), RSS at the end %.1f MB\n", t / hz,
				t / hz * 1e6 / n, r / 1024
		}'
	fi
	if [ -n "$fetched" ] && [ -n "$queued" ]; then
		awk -v s="$START" -v f="$fetched" -v q="$queued" -v b="$last" -v e="$EVENTS" 'BEGIN {
			printf "  phases (from /metrics, +-0.2 s): API answers in at %.1f s, all %d queued at %.1f s", (f - s) / 1000, e, (q - s) / 1000
			if (b > q)
				printf ", last delivery %.1f s later", (b - q) / 1000
			printf "\n"
		}'
	fi
	# (a receiver that gave up before the drain ended leaves connection errors: not shown)
	head -n "$loglines" "$T/bridge-$name.log" | grep -v "Couldn't connect to server" |
		head -n 3 | sed 's/^/  bridge log: /'
}

# 1. every event to MQTT, QoS 1
cfg_head "$T/mqtt.yaml" mqtt "$SIM_PORT" 60s
cat >>"$T/mqtt.yaml" <<CFG
mqtt:
  broker: {url: "mqtt://127.0.0.1:$MQTT_PORT", qos: 1, topic_prefix: tb-bench, client_id: tb-bench-mqtt-$$}
rules:
  - name: every-event
    when: {kind: event}
    to: [{mqtt: broker, topic: "bench/{{zone.name}}"}]
CFG
"$BUILD/tether-bridge" check -c "$T/mqtt.yaml" >"$T/check.out" 2>&1 || die "config: $(cat "$T/check.out")"
"$BUILD/bench/sub_count" --port "$MQTT_PORT" --count "$EVENTS" --topic 'bench/#' \
	--ready-file "$T/sub.ready" --timeout "$MQTT_TIMEOUT" >"$T/sub.out" 2>"$T/sub.log" &
SUB_PID=$!
PIDS="$PIDS $SUB_PID"
wait_file "$T/sub.ready" || die "the MQTT subscriber did not start: $(cat "$T/sub.log")"
START=$(now_ms)
drain mqtt "mqtt qos1" "$T/sub.out" "$SUB_PID"

# 2. every event to a webhook, once per webhook order (order: zone keeps one delivery per
# zone in flight; order: none fills every slot)
for ORDER in $HOOK_ORDERS; do
	"$BUILD/bench/hook_count" --port 0 --port-file "$T/hook.port" --count "$EVENTS" \
		--timeout "$HOOK_TIMEOUT" >"$T/hook-$ORDER.out" 2>"$T/hook-$ORDER.log" &
	HOOK_PID=$!
	PIDS="$PIDS $HOOK_PID"
	wait_file "$T/hook.port" || die "the webhook receiver did not start: $(cat "$T/hook-$ORDER.log")"
	cfg_head "$T/hook-$ORDER.yaml" "hook-$ORDER" "$SIM_PORT" 60s
	cat >>"$T/hook-$ORDER.yaml" <<CFG
webhooks:
  receiver: {url: "http://127.0.0.1:$(cat "$T/hook.port")/hook", format: json, concurrency: $HOOK_CONCURRENCY, order: $ORDER}
rules:
  - name: every-event
    when: {kind: event}
    to: [{webhook: receiver}]
CFG
	rm -f "$T/hook.port"
	START=$(now_ms)
	drain "hook-$ORDER" "webhook (json, concurrency $HOOK_CONCURRENCY, order $ORDER)" "$T/hook-$ORDER.out" "$HOOK_PID"
done
stop "$SIM_PID"

# ---- the run-peers.sh workload ----------------------------------------------------------
# fake_api.py: 50 zones polled every second, every /events answer 1,000 fresh events of all
# 47 documented attributes (~1.5 KB each), 323 of them matching; the same two rules and
# targets as run-peers.sh (webhooks to hook_count instead of nginx). MQTT msg/s and webhook
# posts/s are counted by the receivers; CPU per 1k deliveries over the open window.

# peers VARIANT: mqtt-only or full
peers() {
	local v=$1 api fpid bpid spid hpid=0 c0 c1 rss0 hwm m h mr hr cpu hook=""
	rm -f "$T/api.port"
	python3 "$PEERS/fake_api.py" --serve --port 0 --port-file "$T/api.port" >"$T/api-$v.log" 2>&1 &
	fpid=$!
	PIDS="$PIDS $fpid"
	wait_file "$T/api.port" || die "fake_api.py did not start: $(tail -n 3 "$T/api-$v.log")"
	api=$(cat "$T/api.port")
	rm -f "$T/sub.ready" "$T/hook.port"
	"$BUILD/bench/sub_count" --port "$MQTT_PORT" --count 100000000 --topic 'tether/events/#' \
		--ready-file "$T/sub.ready" --timeout $((PEERS_SECONDS + 15)) >"$T/peers-sub-$v.out" 2>&1 &
	spid=$!
	PIDS="$PIDS $spid"
	wait_file "$T/sub.ready" || die "the MQTT subscriber did not start"
	if [ "$v" = full ]; then
		"$BUILD/bench/hook_count" --port 0 --port-file "$T/hook.port" --count 100000000 \
			--timeout $((PEERS_SECONDS + 15)) >"$T/peers-hook-$v.out" 2>&1 &
		hpid=$!
		PIDS="$PIDS $hpid"
		wait_file "$T/hook.port" || die "the webhook receiver did not start"
		hook="http://127.0.0.1:$(cat "$T/hook.port")/hook"
	fi
	PEERS_POLL_CONCURRENCY=8 PEERS_HOOK_CONCURRENCY='' peers_config "$T/peers-$v.yaml" "$api" "$MQTT_PORT" "$T/state-peers-$v" \
		"tb-bench-peers-$$" warn "$hook"
	"$BUILD/tether-bridge" run -c "$T/peers-$v.yaml" >"$T/bridge-peers-$v.log" 2>&1 &
	bpid=$!
	PIDS="$PIDS $bpid"
	sleep 5 # start-up and a few empty polls: idle
	rss0=$(status_kb "$bpid" VmRSS)
	c0=$(cpu_ticks "$bpid")
	curl -sf "http://127.0.0.1:$api/control/open" >/dev/null || die "fake_api.py: open failed"
	sleep "$PEERS_SECONDS"
	curl -sf "http://127.0.0.1:$api/control/close" >/dev/null
	sleep 3 # what was fetched is delivered
	c1=$(cpu_ticks "$bpid")
	hwm=$(status_kb "$bpid" VmHWM)
	kill -0 "$bpid" 2>/dev/null || echo "bench: the bridge exited early: $(tail -n 5 "$T/bridge-peers-$v.log")"
	stop "$bpid"
	stop "$fpid"
	wait "$spid" 2>/dev/null
	[ "$hpid" != 0 ] && wait "$hpid" 2>/dev/null
	m=$(cat "$T/peers-sub-$v.out")
	h=$([ "$hpid" != 0 ] && cat "$T/peers-hook-$v.out")
	rate() { awk -v n="$(field count "$1")" -v a="$(field first_ms "$1")" -v b="$(field last_ms "$1")" \
		'BEGIN { if (n > 1 && b > a) printf "%.0f", (n - 1) * 1000 / (b - a); else print 0 }'; }
	mr=$(rate "$m")
	hr=0
	[ -n "$h" ] && hr=$(rate "$h")
	cpu=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$(field count "$m")" -v k="$(field count "${h:-count=0}")" \
		'BEGIN { if (n + k > 0) printf "%.3f", c / hz * 1000 / (n + k); else print "?" }')
	note "run-peers workload, $v: MQTT $mr msg/s, webhook $hr posts/s, CPU $cpu s per 1k deliveries," \
		"peak RSS $(mb "$hwm") MB, idle RSS $(mb "$rss0") MB"
	grep -v 'stopping' "$T/bridge-peers-$v.log" | head -n 3 | sed 's/^/  bridge log: /'
}

# small answers, one after another on one kept-alive connection, from fake_api.py: Python's
# http.server writes the headers and the body apart without TCP_NODELAY, so a client whose
# acknowledgement of the headers is delayed (Linux: up to 40 ms) waits that long for each
small_answers() {
	local fpid out
	rm -f "$T/api.port"
	python3 "$PEERS/fake_api.py" --serve --port 0 --port-file "$T/api.port" >"$T/api-small.log" 2>&1 &
	fpid=$!
	PIDS="$PIDS $fpid"
	wait_file "$T/api.port" || die "fake_api.py did not start: $(tail -n 3 "$T/api-small.log")"
	out=$("$BUILD/bench/bench_fetch" "http://127.0.0.1:$(cat "$T/api.port")" bench-static-token 51) ||
		out="failed"
	stop "$fpid"
	note "small answers on a kept-alive connection (fake_api.py /lpr, empty): $(field mean_ms "$out") ms" \
		"each, worst $(field worst_ms "$out") ms ($(field count "$out") requests, $(field connections "$out") connection)"
}

echo
if [ -n "$PEERS" ] && command -v python3 >/dev/null; then
	echo "== the run-peers.sh workload: $PEERS/fake_api.py, 50 zones every 1s, 1,000-event pages, ${PEERS_SECONDS}s"
	small_answers
	peers mqtt-only
	peers full
else
	echo "== the run-peers.sh workload: skipped (no ../shared/bench-peers/fake_api.py; set BENCH_PEERS)"
fi

# polled_cfg NAME INTERVAL TOPIC: $T/NAME.yaml polling the simulator every INTERVAL with a
# 15-minute lookback, every event to the broker on TOPIC/<zone name>
polled_cfg() {
	cfg_head "$T/$1.yaml" "$1" "$SIM_PORT" "$2"
	sed -i 's/lookback: 2h/lookback: 15m/' "$T/$1.yaml"
	cat >>"$T/$1.yaml" <<CFG
mqtt:
  broker: {url: "mqtt://127.0.0.1:$MQTT_PORT", qos: 1, topic_prefix: tb-bench, client_id: tb-bench-$1-$$}
rules:
  - name: every-event
    when: {kind: event}
    to: [{mqtt: broker, topic: "$3/{{zone.name}}"}]
CFG
}

# ---- steady state: a busy site's lookback, read again every poll ------------------------
# Every poll asks each zone's whole lookback again (that is how late events are caught), so
# on a busy site most of the bridge's work is reading events it has already seen: parse,
# normalise, one dedup look-up each, nothing queued. STEADY_EVENTS events over STEADY_ZONES
# zones, all inside the lookback (under max_window_events per zone), are delivered once;
# then the polls every 2 s are measured for STEADY_SECONDS.

echo
echo "== steady state: $STEADY_EVENTS events in the lookback over $STEADY_ZONES zones, read again every 2s"
rm -f "$T/sub.ready"
sim_start steady --zones "$STEADY_ZONES" --backlog "$STEADY_EVENTS" --backlog-span 10m --seed 44
polled_cfg steady 2s steady
"$BUILD/bench/sub_count" --port "$MQTT_PORT" --count "$STEADY_EVENTS" --topic 'steady/#' \
	--ready-file "$T/sub.ready" --timeout "$MQTT_TIMEOUT" >"$T/steady-sub.out" 2>"$T/steady-sub.log" &
SUB_PID=$!
PIDS="$PIDS $SUB_PID"
wait_file "$T/sub.ready" || die "the MQTT subscriber did not start: $(cat "$T/steady-sub.log")"
"$BUILD/tether-bridge" run -c "$T/steady.yaml" >"$T/bridge-steady.log" 2>&1 &
BRIDGE_PID=$!
PIDS="$PIDS $BRIDGE_PID"
wait "$SUB_PID" 2>/dev/null # the first pass: every event delivered once
got=$(field count "$(cat "$T/steady-sub.out")")
cycles() { curl -sf --max-time 2 "http://127.0.0.1:$METRICS_PORT/metrics" |
	awk '$1 == "tether_bridge_poll_cycles_total" { print $2 }'; }
k0=$(cycles)
t0=$(now_ms)
c0=$(cpu_ticks "$BRIDGE_PID")
sleep "$STEADY_SECONDS"
c1=$(cpu_ticks "$BRIDGE_PID")
t1=$(now_ms)
k1=$(cycles)
rss=$(status_kb "$BRIDGE_PID" VmRSS)
hwm=$(status_kb "$BRIDGE_PID" VmHWM)
kill -0 "$BRIDGE_PID" 2>/dev/null || echo "bench: the bridge exited early: $(tail -n 5 "$T/bridge-steady.log")"
stop "$BRIDGE_PID"
stop "$SIM_PID"
if [ "${got:-0}" -lt "$STEADY_EVENTS" ] || [ "$((${k1:-0} - ${k0:-0}))" -lt 1 ]; then
	note "steady state: INCOMPLETE (${got:-0} of $STEADY_EVENTS delivered, $((${k1:-0} - ${k0:-0})) cycles measured)"
else
	note "$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v k=$((k1 - k0)) -v e="$STEADY_EVENTS" -v ms=$((t1 - t0)) \
		-v r="$(mb "$rss")" -v h="$(mb "$hwm")" 'BEGIN {
		printf "steady state: %d events read again every poll: %.0f ms CPU per poll cycle (%.1f us per event),", e, c / hz * 1000 / k, c / hz * 1e6 / (k * e)
		printf " %.1f%% of one core at one cycle per 2 s, %d cycles in %.0f s, RSS %s MB (peak %s MB)", c / hz * 100000 / ms, k, ms / 1000, r, h
	}')"
fi
grep -v 'stopping' "$T/bridge-steady.log" | head -n 3 | sed 's/^/  bridge log: /'

# ---- idle: many zones, no events -----------------------------------------------------

echo
echo "== idle: $IDLE_ZONES zones, no events, poll interval 10s"
sim_start idle --zones "$IDLE_ZONES" --backlog 0 --seed 43
polled_cfg idle 10s bench
"$BUILD/tether-bridge" run -c "$T/idle.yaml" >"$T/bridge-idle.log" 2>&1 &
BRIDGE_PID=$!
PIDS="$PIDS $BRIDGE_PID"
sleep 5 # start-up and the first cycle (zones list, 100 zones' windows)
req0=$(curl -sf "http://127.0.0.1:$SIM_PORT/_sim/stats" | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')
t0=$(now_ms)
c0=$(cpu_ticks "$BRIDGE_PID")
sleep "$IDLE_SECONDS"
c1=$(cpu_ticks "$BRIDGE_PID")
t1=$(now_ms)
rss=$(status_kb "$BRIDGE_PID" VmRSS)
hwm=$(status_kb "$BRIDGE_PID" VmHWM)
req1=$(curl -sf "http://127.0.0.1:$SIM_PORT/_sim/stats" | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')
kill -0 "$BRIDGE_PID" 2>/dev/null || echo "bench: the bridge exited early: $(tail -n 5 "$T/bridge-idle.log")"
stop "$BRIDGE_PID"
pct=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v ms=$((t1 - t0)) 'BEGIN { printf "%.2f", c / hz * 100000 / ms }')
secs=$(awk -v ms=$((t1 - t0)) 'BEGIN { printf "%.0f", ms / 1000 }')
note "idle: $IDLE_ZONES zones polled every 10s: RSS $(mb "$rss") MB (peak $(mb "$hwm") MB)," \
	"CPU $pct% of one core over $secs s ($((${req1:-0} - ${req0:-0})) API requests)"
grep -v 'stopping' "$T/bridge-idle.log" | head -n 3 | sed 's/^/  bridge log: /'
# the floor under that figure: a process linked with the same libraries, doing nothing
"$BUILD/bench/rss_floor" >"$T/rss_floor.out" 2>&1 || echo "bench: rss_floor failed: $(cat "$T/rss_floor.out")"
sed 's/^/  /' "$T/rss_floor.out"
floor=$(sed -n 's/^rss floor, after every library.s set-up: VmRSS \([0-9]*\) kB.*/\1/p' "$T/rss_floor.out")
note "idle: RSS floor of the linked libraries (set up, nothing else done): $(mb "$floor") MB"

# ---- summary ---------------------------------------------------------------------------

echo
echo "== summary"
if [ "$MICRO" = 1 ]; then
	r=$(sed -n 's/^rules 1000: \([0-9.]*\) us\/message.*/\1/p' "$T/bench_rules.out")
	echo "rule cost: 1000 rules: ${r:-?} us/message"
	w=$(grep '^watchlist 100000 entries fuzzy=1:' "$T/bench_watchlist.out")
	echo "plate lookup: 100000-plate watchlist at fuzzy 1: $(echo "$w" |
		sed -n 's/^[^:]*: \([0-9.]* us\/lookup (miss)\), \([0-9.]* us\/lookup (hit)\), \([0-9.]* us\/lookup ([^)]*)\).*/\1, \2, \3/p')"
fi
printf '%s' "$SUMMARY"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
