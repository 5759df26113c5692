# Shared helpers for end-to-end scenarios: real binaries and peers on 127.0.0.1 only.
# Each scenario sources this file, calls the start_* functions it needs and uses
# `fail` / `ok`. Everything started is stopped by the EXIT trap. A scenario runs in its
# temp folder $T and reaches the tree through $ROOT, so a stray relative write lands in $T.
# Scenarios wait for what they need (wait_for, wait_log, wait_cycles, a subscriber's
# probe) and never sleep: a period in which nothing may happen is quiet_for.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BRIDGE=$BUILD/tether-bridge
SIM=$BUILD/tether-sim
TOOLS=$BUILD/tools
T=$(mktemp -d "${TMPDIR:-/tmp}/tb-e2e.XXXXXX") || { echo "FAIL: unable to create a temp folder"; exit 1; }
cd "$T" || exit 1
PIDS=""

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	# up to 10 s for a clean exit (valgrind writes its report then), then SIGKILL
	n=100
	while [ $n -gt 0 ]; do
		alive=0
		for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
		n=$((n - 1))
	done
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	# only what the scenario started and knows: a stray child must not hold up the exit
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	# under make test-asan a sanitizer report in any log fails the scenario
	san=$(grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:|are definitely lost|Invalid (read|write)|uninitialised value" "$T"/*.log 2>/dev/null)
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; fi
	if [ -n "$san" ]; then
		for f in $san; do echo "sanitizer report in $(basename "$f"):"; grep -A15 -E "ERROR: |runtime error:" "$f" | head -n 40; done
		[ "${KEEP:-0}" = 1 ] || rm -rf "$T"
		exit 1
	fi
	[ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM

# fail WHY: the scenario failed. The bridge logs' warnings and last lines, and the broker's
# errors, go with it (the temp folder is removed at exit), so a failure in CI can be read
# afterwards.
fail() {
	local f
	echo "FAIL: $*"
	for f in "$T"/bridge*.log; do
		[ -s "$f" ] || continue
		echo "--- $(basename "$f"): warnings and errors (last 20), then its last 10 lines"
		grep -E ' (warn|error): ' "$f" | tail -n 20
		echo "..."
		tail -n 10 "$f"
	done
	# a broker that dropped messages or lost its sessions explains a missing count
	if grep -qE 'being dropped|Error' "$T/mosquitto.log" 2>/dev/null; then
		echo "--- mosquitto.log: errors and drops (last 5)"
		grep -E 'being dropped|Error' "$T/mosquitto.log" | tail -n 5
	fi
	exit 1
}
ok() { echo "ok: $*"; }
freeport() { "$TOOLS/freeport"; }

# wait_for CMD... : retries CMD every ${STEP_MS:-100} ms for up to ${WAIT:-10} s (whole
# seconds); 1 when it never succeeded
wait_for() {
	local step=${STEP_MS:-100} n
	n=$((${WAIT:-10} * 1000 / step))
	while [ $n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep "$((step / 1000)).$(printf '%03d' $((step % 1000)))"
		n=$((n - 1))
	done
	return 1
}

# wait_progress COUNT CMD... : like wait_for, but for a drain whose length depends on the
# machine's load: retries CMD as long as the number COUNT prints keeps growing, and gives
# up (1) once it has not grown for ${STALL:-20} s.
wait_progress() {
	local count=$1 last=-1 now
	shift
	while :; do
		WAIT=${STALL:-20} wait_for "$@" && return 0
		now=$("$count")
		[ "$now" -gt "$last" ] || return 1
		last=$now
	done
}

# quiet_for SECONDS WHY: the one deliberate pause: a period in which something must NOT
# happen (asserted by the caller afterwards) or real time must pass (a downtime, the moment
# of a kill). Anything that can be waited for is waited for instead; WHY goes in the log.
quiet_for() {
	echo "quiet ${1}s: $2"
	sleep "$1"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# broker_conf: the lines every test broker shares. A test broker must neither lose a session
# nor drop a message, or a scenario fails for what the bridge did right:
# - user root, when started as root: mosquitto would switch to the user "mosquitto", which
#   cannot write into $T (mode 0700), so a persistent broker saved nothing and its restart
#   lost the durable sessions and what they held (started as anyone else, it keeps its user)
# - max_queued_messages: above its default, 1000 messages waiting for one subscriber on top
#   of those in flight, the broker acknowledges a QoS 1 publish and drops it (a subscriber
#   starved of CPU falls that far behind a bridge draining a backlog)
broker_conf() {
	[ "$(id -u)" -ne 0 ] || echo "user root"
	echo "max_queued_messages 100000"
}

# start_mosquitto: sets MQTT_PORT
start_mosquitto() {
	MQTT_PORT=${1:-$(freeport)}
	cat >"$T/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
$(broker_conf)
CONF
	/usr/sbin/mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
	MQTT_PID=$!
	PIDS="$PIDS $MQTT_PID"
	WAIT=10 wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$MQTT_PORT" || fail "mosquitto did not start"
}

# stop_mosquitto: a persistent broker must have saved its sessions and retained messages
# as it exits, or its restart would not be the same broker again
stop_mosquitto() {
	kill "$MQTT_PID" 2>/dev/null
	wait "$MQTT_PID" 2>/dev/null
	grep -qx 'persistence true' "$T/mosquitto.conf" || return 0
	[ -s "$T/mq/mosquitto.db" ] && ! grep -q 'Error saving' "$T/mosquitto.log" ||
		fail "the broker did not save its sessions: $(grep -m 2 'Error' "$T/mosquitto.log")"
}

# start_sim ARGS...: sets SIM_PORT and SIM_URL
start_sim() {
	rm -f "$T/sim.port"
	"$SIM" --port 0 --port-file "$T/sim.port" --quiet "$@" >"$T/sim.out" 2>"$T/sim.log" &
	SIM_PID=$!
	PIDS="$PIDS $SIM_PID"
	wait_for test -s "$T/sim.port" || fail "tether-sim did not start"
	SIM_PORT=$(cat "$T/sim.port")
	SIM_URL=http://127.0.0.1:$SIM_PORT
}

# sim_post PATH JSON: admin API call, prints the response body
sim_post() { curl -sf -X POST -H 'Content-Type: application/json' -d "$2" "$SIM_URL$1"; }
sim_patch() { curl -sf -X PATCH -H 'Content-Type: application/json' -d "$2" "$SIM_URL$1"; }
sim_get() { curl -sf "$SIM_URL$1"; }

# start_sub TOPIC: records "topic payload" lines in $T/sub.txt; returns once a probe
# message has come through the subscription (sub_probe)
start_sub() {
	mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t "$1" >"$T/sub.txt" 2>"$T/sub.log" &
	SUB_PID=$!
	PIDS="$PIDS $SUB_PID"
	sub_probe "$1" "$T/sub.txt"
}

# The broker does not say when a subscription is in place, so a subscriber is ready when a
# message published after it started has reached its output. Probe lines carry the payload
# tb-e2e-probe-PID-N; sub_lines (and every sub_* reader) leaves them out.
PROBE_N=0
# probe_topic FILTER: a topic FILTER covers (each + and # stands for one level)
probe_topic() {
	local out="" seg IFS=/
	for seg in $1; do
		case "$seg" in "+" | "#") seg=tb-e2e-probe ;; esac
		out="$out${out:+/}$seg"
	done
	printf '%s\n' "$out"
}
# probe_seen TOPIC PAYLOAD FILE: the probe is in FILE; if not, publishes it (again)
probe_seen() {
	grep -qxF -- "$1 $2" "$3" && return 0
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$1" -m "$2" 2>/dev/null
	return 1
}
# sub_probe FILTER FILE: waits until a probe published on a topic FILTER covers is in FILE
sub_probe() {
	local topic
	PROBE_N=$((PROBE_N + 1))
	topic=$(probe_topic "$1")
	WAIT=10 wait_for probe_seen "$topic" "tb-e2e-probe-$$-$PROBE_N" "$2" ||
		fail "the subscriber on '$1' is not receiving (no probe on '$topic'): $(cat "$T/sub.log")"
}
# sub_lines [FILE]: the subscriber's "topic payload" lines without the probes
sub_lines() { grep -v -- ' tb-e2e-probe-[0-9]*-[0-9]*$' "${1:-$T/sub.txt}" 2>/dev/null; }

# start_bridge CONFIG: runs tether-bridge run in the background, log in $T/bridge.log
# BRIDGE_WRAPPER (e.g. "valgrind --leak-check=full") runs the bridge under a tool
# (the lines logged before are skipped by wait_log and log_since: log_mark)
start_bridge() {
	log_mark
	${BRIDGE_WRAPPER:-} "$BRIDGE" run -c "$1" >>"$T/bridge.log" 2>&1 &
	BRIDGE_PID=$!
	PIDS="$PIDS $BRIDGE_PID"
}

# count_lines FILE PATTERN
count_lines() { grep -c -- "$2" "$1" 2>/dev/null || true; }

# log_mark: later log_since and wait_log look at the bridge log from here on
log_mark() { LOG_MARK=$(cat "$T/bridge.log" 2>/dev/null | wc -l); }
LOG_MARK=0
# log_since: the bridge log lines written since the last log_mark (or start_bridge)
log_since() { tail -n "+$((LOG_MARK + 1))" "$T/bridge.log" 2>/dev/null; }
log_has() { log_since | grep -q -- "$1"; }
# wait_log PATTERN [SECONDS]: waits until the bridge logs a line matching PATTERN (a grep
# regex) after the last log_mark / start_bridge
wait_log() { WAIT=${2:-10} wait_for log_has "$1"; }

# ---- the simulator's request log: every /api and /oauth request it answered ----

# sim_reqs: the log, {"requests": [{method, path, query, auth, status, at}, ...]}
sim_reqs() { sim_get /_sim/requests; }
sim_curl_reqs() { sim_reqs; }
# sim_reqs_clear: empties the log (sim_cycles counts from here again)
sim_reqs_clear() {
	curl -sf -X DELETE "$SIM_URL/_sim/requests" >/dev/null ||
		fail "unable to clear the simulator's request log"
}
# sim_cycles: poll cycles answered for every zone: the fewest window polls
# (/api/v3p/events with zone_id and from, answered 200) of any of the simulator's zones
sim_cycles() {
	sim_reqs | jq --argjson zs "$(sim_get /_sim/zones | jq -c '[.zones[].id]')" '
		[.requests[] | select(.path == "/api/v3p/events" and .status == 200 and
			(.query | test("(^|&)from="))) | .query | capture("zone_id=(?<z>[^&]*)").z] as $q
		| [$zs[] as $z | [$q[] | select(. == $z)] | length] | min // 0'
}
cycles_reached() { [ "$(sim_cycles)" -ge "$1" ]; }
# wait_cycles N [SECONDS]: waits until every zone has had N more poll cycles answered (fails
# the scenario otherwise). With N = 2 at least one whole cycle began after the call: what
# the API held then has been polled, ruled on, and had a cycle's time to be delivered.
wait_cycles() {
	local base
	base=$(sim_cycles) || fail "unable to read the simulator's request log"
	WAIT=${2:-15} wait_for cycles_reached $((base + $1)) ||
		fail "the bridge did not poll every zone $1 more time(s) in ${2:-15} s: $(tail -3 "$T/bridge.log")"
}

# ---- daemon scenario helpers (t_daemon_*) ----

# sim_zone_id N / sim_zone_name N: the simulator's Nth zone (0-based, admin API order)
sim_zone_id() { sim_get /_sim/zones | jq -r ".zones[$1].id"; }
sim_zone_name() { sim_get /_sim/zones | jq -r ".zones[$1].name"; }

# sim_event JSON: injects an event (admin API), prints its id; sim_event_doc prints the
# whole {"data": ...} document
sim_event_doc() { sim_post /_sim/events "$1"; }
sim_event() { sim_post /_sim/events "$1" | jq -r '.data.id'; }
sim_plate() { sim_post /_sim/lprs "$1" | jq -r '.data.id'; }
sim_fault() { sim_post /_sim/faults "$1" >/dev/null || fail "unable to arm fault $1"; }

# iso_ago SECONDS: an ISO 8601 UTC time SECONDS in the past
iso_ago() { date -u -d "@$(($(date +%s) - $1))" +%Y-%m-%dT%H:%M:%SZ; }

# cfg_head FILE [POLL_EXTRA]: writes the tether, poll, state and mqtt ("home", prefix tb)
# sections of a config for the running sim and broker; rules are appended by the caller
cfg_head() {
	cat >"$1" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token, timeout: 3s}
poll: {interval: 1s, lookback: 5m${2:+, $2}}
state_dir: $T/state
log: {level: ${LOG_LEVEL:-info}}
mqtt:
  home: {url: "mqtt://127.0.0.1:$MQTT_PORT", qos: 1, topic_prefix: tb, client_id: tb-e2e-$$}
CFG
}

# sub_count [FILE]: lines received so far by the subscriber
sub_count() { sub_lines "${1:-$T/sub.txt}" | wc -l; }
# sub_wait N [SECONDS]: waits until the subscriber has at least N lines
sub_has() { [ "$(sub_count)" -ge "$1" ]; }
sub_wait() { WAIT=${2:-15} wait_for sub_has "$1"; }
# sub_payloads TOPIC: the payloads received on exactly TOPIC, one per line
sub_payloads() { sub_lines | awk -v t="$1" 'index($0, t " ") == 1 { print substr($0, length(t) + 2) }'; }
# sub_ids: the message id of every payload received (any topic)
sub_ids() { sub_lines "${1:-$T/sub.txt}" | sed 's/^[^{]*//' | jq -r '.id // empty' 2>/dev/null; }

# start_mosquitto_persist [PORT]: a broker keeping durable sessions in $T/mq (for restarts)
start_mosquitto_persist() {
	MQTT_PORT=${1:-${MQTT_PORT:-$(freeport)}}
	mkdir -p "$T/mq"
	cat >"$T/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $T/mq/
autosave_interval 1
$(broker_conf)
CONF
	/usr/sbin/mosquitto -c "$T/mosquitto.conf" >>"$T/mosquitto.log" 2>&1 &
	MQTT_PID=$!
	PIDS="$PIDS $MQTT_PID"
	WAIT=10 wait_for port_open "$MQTT_PORT" || fail "mosquitto did not start on $MQTT_PORT"
}

# start_sub_durable TOPIC [FILE]: a QoS 1 subscriber with a persistent session (-c -i), so
# messages published while it is away are queued by the broker; appends to FILE
start_sub_durable() {
	mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -c -i "tb-e2e-sub-$$" -v -t "$1" \
		>>"${2:-$T/sub.txt}" 2>>"$T/sub.log" &
	SUB_PID=$!
	PIDS="$PIDS $SUB_PID"
	sub_probe "$1" "${2:-$T/sub.txt}"
}
stop_sub() { kill "$SUB_PID" 2>/dev/null; wait "$SUB_PID" 2>/dev/null; forget_pid "$SUB_PID"; }

# forget_pid PID: a process already reaped is not signalled again by cleanup (its id may
# belong to someone else by then)
forget_pid() { PIDS=$(printf ' %s' $PIDS | sed "s/ $1\b//g"); }

# bridge_alive: the bridge process is still running; bridge_gone: it is not
bridge_alive() { kill -0 "$BRIDGE_PID" 2>/dev/null; }
bridge_gone() { ! bridge_alive; }
# stop_bridge [SIGNAL]: signals the bridge and reaps it
stop_bridge() {
	kill "-${1:-TERM}" "$BRIDGE_PID" 2>/dev/null
	wait "$BRIDGE_PID" 2>/dev/null
	forget_pid "$BRIDGE_PID"
}

# finish_bridge: SIGTERM, then the exit status must be 0 and the log free of sanitizer
# reports (ASan/UBSan/LSan builds print them at exit)
finish_bridge() {
	kill -TERM "$BRIDGE_PID" 2>/dev/null
	wait "$BRIDGE_PID"
	rc=$?
	forget_pid "$BRIDGE_PID"
	grep -q 'AddressSanitizer\|LeakSanitizer\|runtime error:' "$T/bridge.log" &&
		fail "sanitizer report in the bridge log: $(grep -m 3 'Sanitizer\|runtime error:\|#[0-9] ' "$T/bridge.log")"
	[ $rc -eq 0 ] || fail "the bridge exited with $rc after SIGTERM: $(tail -3 "$T/bridge.log")"
}

# ---- webhook scenario helpers: a real receiver (tests/tools/receiver.c) ----

# start_receiver ARGS...: sets RECV_PORT (RECV_FIXED_PORT, when set, is the port to take);
# requests are logged to $T/recv.jsonl
start_receiver() {
	rm -f "$T/recv.port"
	"$TOOLS/receiver" --port "${RECV_FIXED_PORT:-0}" --port-file "$T/recv.port" \
		--log "$T/recv.jsonl" "$@" >"$T/recv.out" 2>&1 &
	RECV_PID=$!
	PIDS="$PIDS $RECV_PID"
	wait_for test -s "$T/recv.port" || fail "receiver did not start"
	RECV_PORT=$(cat "$T/recv.port")
}
stop_receiver() { kill "$RECV_PID" 2>/dev/null; wait "$RECV_PID" 2>/dev/null; forget_pid "$RECV_PID"; }
# recv_script CODES: the statuses the receiver answers next (e.g. 500,500,200)
recv_script() { curl -sf -X POST -d "$1" "http://127.0.0.1:$RECV_PORT/_recv/script" >/dev/null; }
# recv_count: requests logged so far; recv_at_least N: at least N
recv_count() { [ -f "$T/recv.jsonl" ] && wc -l <"$T/recv.jsonl" || echo 0; }
recv_at_least() { [ "$(recv_count)" -ge "$1" ]; }

# first_zone / zone_n N: id of the simulator's first / Nth zone, as the API lists them
first_zone() {
	curl -sf -H 'Authorization: Bearer sim-static-token' "$SIM_URL/api/v3p/zones" | jq -r '.data[0].id'
}
zone_n() {
	curl -sf -H 'Authorization: Bearer sim-static-token' "$SIM_URL/api/v3p/zones" | jq -r ".data[$1].id"
}

# inject_event ZONE FLAGS_JSON [SEVERITY] [STARTS_AT]: prints the new event's id
inject_event() {
	sim_post /_sim/events "{\"zone_id\":\"$1\",\"flags\":$2,\"severity\":\"${3:-high}\"${4:+,\"starts_at\":\"$4\"}}" |
		jq -r '.data.id'
}

# verify_sig SECRET LINE: checks webhook-signature of a logged request with the secret
verify_sig() {
	key=$(printf '%s' "${1#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
	id=$(printf '%s' "$2" | jq -r '.headers["webhook-id"]')
	ts=$(printf '%s' "$2" | jq -r '.headers["webhook-timestamp"]')
	want=$( { printf '%s.%s.' "$id" "$ts"; printf '%s' "$2" | jq -j '.body'; } |
		openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
	for s in $(printf '%s' "$2" | jq -r '.headers["webhook-signature"]'); do
		[ "$s" = "v1,$want" ] && return 0
	done
	return 1
}

# ---- control rooms: a config with a commands broker and a control section, commands,
# results, and the simulator's record of wall switches

# ctl_cfg FILE [MANUAL_HOLD] [BROKER_EXTRA]: cfg_head with commands: true on broker "home"
# (prefix tb) and a control section (modes home, away, night, disarmed; home Overview);
# rules are appended by the caller. It logs at debug, for ctl_wait_commands.
ctl_cfg() {
	LOG_LEVEL=${LOG_LEVEL:-debug} cfg_head "$1"
	sed -i "s|client_id: tb-e2e-\$\$}|client_id: tb-e2e-$$, commands: ${3:-true}}|; s|client_id: tb-e2e-$$}|client_id: tb-e2e-$$, commands: ${3:-true}}|" "$1"
	cat >>"$1" <<CFG
control:
  modes: [home, away, night, disarmed]
  home_perspective: Overview
  manual_hold: ${2:-5m}
CFG
}

# persp_id NAME: a perspective's id from the simulator's API
persp_id() {
	curl -sf -H 'Authorization: Bearer sim-static-token' "$SIM_URL/api/v3p/perspectives" |
		jq -r --arg n "$1" '.data[] | select(.attributes.name == $n) | .id'
}

# switches: the perspective id of every live_switch_preset the simulator served, in order
switches() {
	sim_get /_sim/requests |
		jq -r '.requests[] | select(.method == "POST" and (.path | endswith("/live_switch_preset"))) | .path' |
		sed 's|.*/perspectives/||; s|/live_switch_preset||'
}
switch_count() { switches | wc -l; }
switches_at_least() { [ "$(switch_count)" -ge "$1" ]; }

# cmd NAME PAYLOAD [mosquitto_pub ARGS...]: a command on tb/cmd/NAME
cmd() {
	local name=$1 payload=$2
	shift 2
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "tb/cmd/$name" -m "$payload" "$@" ||
		fail "unable to publish tb/cmd/$name"
}

# results: the payloads received on tb/cmd/result; result_n N: the Nth (1-based)
results() { sub_payloads tb/cmd/result; }
result_count() { results | wc -l; }
results_at_least() { [ "$(result_count)" -ge "$1" ]; }
result_n() { results | sed -n "${1}p"; }

# retained TOPIC: the retained payload of TOPIC now (a fresh subscriber, first message)
retained() {
	mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t "$1" -C 1 -W 3 --retained-only 2>/dev/null
}
# retained_is TOPIC VALUE: the retained payload of TOPIC is VALUE
retained_is() { [ "$(retained "$1")" = "$2" ]; }

# ctl_wait_commands: the bridge's subscription to tb/cmd/# is in place (the broker
# acknowledged it), so a command published now reaches it
ctl_wait_commands() {
	WAIT=15 wait_for grep -q "subscribed to 'tb/cmd/#'" "$T/bridge.log" ||
		fail "the bridge did not subscribe to tb/cmd/#: $(tail -3 "$T/bridge.log")"
}
