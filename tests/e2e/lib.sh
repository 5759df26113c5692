# Shared helpers for end-to-end scenarios: real binaries and peers on 127.0.0.1 only.
# Each scenario sources this file, calls the start_* functions it needs and uses
# `fail` / `ok`. Everything started is stopped by the EXIT trap.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BRIDGE=$BUILD/tether-bridge
SIM=$BUILD/tether-sim
TOOLS=$BUILD/tools
T=$(mktemp -d /tmp/tb-e2e.XXXXXX)
PIDS=""

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
freeport() { "$TOOLS/freeport"; }

# wait_for CMD... : retries CMD every 0.1 s for up to ${WAIT:-10} s
wait_for() {
	n=$(( ${WAIT:-10} * 10 ))
	while [ $n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_mosquitto: sets MQTT_PORT
start_mosquitto() {
	MQTT_PORT=${1:-$(freeport)}
	cat >"$T/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
CONF
	/usr/sbin/mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
	MQTT_PID=$!
	PIDS="$PIDS $MQTT_PID"
	WAIT=10 wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$MQTT_PORT" || fail "mosquitto did not start"
}

stop_mosquitto() { kill "$MQTT_PID" 2>/dev/null; wait "$MQTT_PID" 2>/dev/null; }

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

# start_sub TOPIC: records "topic payload" lines in $T/sub.txt
start_sub() {
	mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t "$1" >"$T/sub.txt" 2>"$T/sub.log" &
	SUB_PID=$!
	PIDS="$PIDS $SUB_PID"
	sleep 0.3
}

# start_bridge CONFIG: runs tether-bridge run in the background, log in $T/bridge.log
start_bridge() {
	"$BRIDGE" run -c "$1" >>"$T/bridge.log" 2>&1 &
	BRIDGE_PID=$!
	PIDS="$PIDS $BRIDGE_PID"
}

# count_lines FILE PATTERN
count_lines() { grep -c -- "$2" "$1" 2>/dev/null || true; }
