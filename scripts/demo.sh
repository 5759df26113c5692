#!/bin/bash
# make demo: tether-sim + mosquitto + a webhook receiver + tether-bridge with
# config/demo.yaml, all on free 127.0.0.1 ports; prints the alerts as they arrive.
# Ctrl-C stops everything.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/tether-demo.XXXXXX)
PIDS=""
stop() {
	trap - INT TERM EXIT
	echo
	echo "demo: stopping"
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
	exit 0
}
trap stop INT TERM EXIT

port() { "$BUILD/tools/freeport"; }
wait_file() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }

export MQTT_PORT=$(port) DEMO_STATE_DIR=$T/state
"$BUILD/tether-sim" --port 0 --port-file "$T/sim.port" --zones 4 --rate 0.4 --plate-rate 0.3 \
	--incomplete 30 --late 10 --seed 7 --quiet >"$T/sim.log" 2>&1 &
PIDS="$PIDS $!"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQTT_PORT" >"$T/mosquitto.conf"
/usr/sbin/mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
PIDS="$PIDS $!"
"$BUILD/tools/receiver" --port 0 --port-file "$T/hook.port" --print | sed -u 's/^/[webhook] /' &
PIDS="$PIDS $!"
wait_file "$T/sim.port" || { echo "demo: tether-sim did not start"; exit 1; }
wait_file "$T/hook.port" || { echo "demo: receiver did not start"; exit 1; }
export TETHER_SIM_PORT=$(cat "$T/sim.port") WEBHOOK_PORT=$(cat "$T/hook.port")
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$MQTT_PORT") 2>/dev/null && break; sleep 0.1; done

echo "demo: tether-sim http://127.0.0.1:$TETHER_SIM_PORT  mosquitto 127.0.0.1:$MQTT_PORT  webhook http://127.0.0.1:$WEBHOOK_PORT/hook"
echo "demo: MQTT messages are shown as [mqtt] topic payload, webhook deliveries as [webhook]; Ctrl-C stops"
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -v -t 'tether/#' | sed -u 's/^\(.\{0,400\}\).*/[mqtt] \1/' &
PIDS="$PIDS $!"
"$BUILD/tether-bridge" run -c config/demo.yaml 2>&1 | sed -u 's/^/[bridge] /' &
PIDS="$PIDS $!"

# a first intrusion and a watched plate right away, so something shows within seconds
sleep 1
SIM=http://127.0.0.1:$TETHER_SIM_PORT
zone=$(curl -s -H 'Authorization: Bearer sim-static-token' "$SIM/api/v3p/zones" | jq -r '.data[0].id')
curl -s -X POST -d "{\"zone_id\":\"$zone\",\"flags\":[\"intrusion\",\"motion\"],\"severity\":\"high\"}" \
	"$SIM/_sim/events" >/dev/null
curl -s -X POST -d "{\"zone_id\":\"$zone\",\"plate_number\":\"AB12 CDF\",\"country\":\"GBR\"}" \
	"$SIM/_sim/lprs" >/dev/null
wait
