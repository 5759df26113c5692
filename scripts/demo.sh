#!/bin/bash
# make demo: tether-sim + mosquitto + a webhook receiver + tether-bridge with
# config/demo.yaml, all on free 127.0.0.1 ports; prints one line per alert as it arrives.
# Ctrl-C (or SIGTERM, or DEMO_SECONDS=N) stops everything and exits 0.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
T=$(mktemp -d "${TMPDIR:-/tmp}/tether-demo.XXXXXX")
PIDS=""      # the programs of the demo
VIEWS=""     # the formatters showing their output
BRIDGE_PID=""

next_steps() {
	cat <<'TEXT'
demo: next steps, with your own Tether account:
  cp config/example.yaml my.yaml    # the commented tour; config/service.yaml for a service
  export WEBHOOK_SECRET=whsec_$(head -c 32 /dev/urandom | base64)    # the secret it names
  ./tether-bridge check -c my.yaml  # every mistake at once, with its line
  ./tether-bridge explain -c my.yaml --zones tests/data/api-examples/zones.json \
      tests/data/api-examples/events.json    # each rule's verdict on real API data, sends nothing
  README.md and docs/ (configuration, rules, operations) say the rest.
TEXT
}

# stop [STATUS]: stops everything the demo started, says what to do next, exits STATUS (0)
stop() {
	trap - INT TERM EXIT
	echo
	echo "demo: stopping"
	# the bridge first, so it can still tell the broker it goes offline
	[ -n "$BRIDGE_PID" ] && kill "$BRIDGE_PID" 2>/dev/null && wait "$BRIDGE_PID" 2>/dev/null
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait $PIDS 2>/dev/null
	sleep 0.2 # the formatters print what was left
	for p in $VIEWS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	next_steps
	rm -rf "$T"
	exit "${1:-0}"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

port() { "$BUILD/tools/freeport"; }
wait_file() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }
# follow FILE: the file's lines as they are written, until this script ends
follow() { tail -n +1 -F --pid=$$ "$1" 2>/dev/null; }

# One line per alert from a v1 message: time (as the API gave it), zone, flags or plate
# (with watchlist and label), rule; the caller adds the target.
JQ_DEFS='
def pad(n): if length >= n then . else . + ("                                        "[:n - length]) end;
def what:
  if .kind == "plate" then
    "plate \(.plate.number)"
    + (if .plate.watchlist then " on \(.plate.watchlist)" + (if .plate.label then " (\(.plate.label))" else "" end) else "" end)
  else (.flags | join(",")) + (if .severity != "" then " [\(.severity)]" else "" end) end;
def alert: "\(.occurred_at[11:19])  \(.zone.name | pad(14))  \(what | pad(34))  rule \(.rule // "-" | pad(13))";
'

export WEBHOOK_SECRET=whsec_$(head -c 32 /dev/urandom | base64 -w0)
export MQTT_PORT=$(port) DEMO_STATE_DIR=$T/state
"$BUILD/tether-sim" --port 0 --port-file "$T/sim.port" --zones 4 --rate 0.4 --plate-rate 0.3 \
	--incomplete 30 --late 10 --seed 7 --quiet >"$T/sim.log" 2>&1 &
PIDS="$PIDS $!"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQTT_PORT" >"$T/mosquitto.conf"
/usr/sbin/mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
PIDS="$PIDS $!"
# the receiver checks every request's signature with the secret itself (libcrypto)
"$BUILD/tools/receiver" --port 0 --port-file "$T/hook.port" --log "$T/hook.jsonl" \
	--secret "$WEBHOOK_SECRET" >"$T/receiver.log" 2>&1 &
PIDS="$PIDS $!"
wait_file "$T/sim.port" || { echo "demo: tether-sim did not start: $(cat "$T/sim.log")"; exit 1; }
wait_file "$T/hook.port" || { echo "demo: the webhook receiver did not start"; exit 1; }
export TETHER_SIM_PORT=$(cat "$T/sim.port") WEBHOOK_PORT=$(cat "$T/hook.port")
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$MQTT_PORT") 2>/dev/null && break; sleep 0.1; done

echo "demo: tether-sim http://127.0.0.1:$TETHER_SIM_PORT, mosquitto 127.0.0.1:$MQTT_PORT, webhooks http://127.0.0.1:$WEBHOOK_PORT"
echo "demo: config/demo.yaml; one line per alert: time (the zone's), zone, what, rule -> target"
echo "demo: Ctrl-C stops it and prints the next steps"
echo

# MQTT: every message under tether/, as JSON with its topic
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t 'tether/#' -F '%J' >"$T/mqtt.jsonl" 2>"$T/mqtt.log" &
PIDS="$PIDS $!"
touch "$T/mqtt.jsonl" "$T/hook.jsonl" "$T/bridge.log"
follow "$T/mqtt.jsonl" | jq -n -r --unbuffered "$JQ_DEFS"'
  inputs
  | if (.payload | type) == "object" and .payload.schema == "tether-bridge/v1" then
      "\(.payload | alert) -> mqtt \(.topic)"
    else "[mqtt] \(.topic) \(.payload)" end' &
VIEWS="$VIEWS $!"
# webhooks: the JSON one as a line with the signature verdict; the first Slack message in
# full, as Slack would get it, then one line each
follow "$T/hook.jsonl" | jq -n -r --unbuffered "$JQ_DEFS"'
  foreach inputs as $r (0; if $r.path == "/slack" then . + 1 else . end;
    ($r.body | fromjson? // {}) as $b
    | if $r.path == "/slack" and . == 1 then
        "", "[webhook chat] the first Slack message, exactly as sent (signature \($r.signature)):",
        $b, ""
      elif $r.path == "/slack" then
        # zone, flags and time from the Slack fields; only the rule "intruder" sends there
        ([$b.blocks[]?.fields[]?.text | split("\n") | {key: .[0], value: .[1]}] | from_entries) as $f
        | "\($f["*Time*"] // "" | .[11:19])  \($f["*Zone*"] // "" | pad(14))  \($f["*Flags*"] // "" | gsub(", "; ",") | pad(34))  rule \("intruder" | pad(13)) -> webhook chat (slack), signature \($r.signature)"
      elif $b.schema == "tether-bridge/v1" then
        "\($b | alert) -> webhook receiver, signature \($r.signature)"
      else "[webhook] \($r.method) \($r.path) \($r.body[:200])" end)' &
VIEWS="$VIEWS $!"
"$BUILD/tether-bridge" run -c config/demo.yaml >"$T/bridge.log" 2>&1 &
BRIDGE_PID=$!
PIDS="$PIDS $BRIDGE_PID"
follow "$T/bridge.log" | sed -u 's/^/[bridge] /' &
VIEWS="$VIEWS $!"

# a first intrusion and a watched plate right away, so something shows within seconds
sleep 1
SIM=http://127.0.0.1:$TETHER_SIM_PORT
zone=$(curl -s -H 'Authorization: Bearer sim-static-token' "$SIM/api/v3p/zones" | jq -r '.data[0].id')
curl -s -X POST -d "{\"zone_id\":\"$zone\",\"flags\":[\"intrusion\",\"motion\"],\"severity\":\"high\"}" \
	"$SIM/_sim/events" >/dev/null
curl -s -X POST -d "{\"zone_id\":\"$zone\",\"plate_number\":\"AB12 CDF\",\"country\":\"GBR\"}" \
	"$SIM/_sim/lprs" >/dev/null

# until Ctrl-C, DEMO_SECONDS, or the bridge stopping by itself
start=$SECONDS
while kill -0 "$BRIDGE_PID" 2>/dev/null; do
	if [ -n "${DEMO_SECONDS:-}" ] && [ $((SECONDS - start)) -ge "$DEMO_SECONDS" ]; then
		stop 0
	fi
	sleep 0.5
done
wait "$BRIDGE_PID"
echo "demo: the bridge stopped by itself (exit $?); its last lines are above"
stop 1
