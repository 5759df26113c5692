# SIGKILL during a burst of webhook deliveries, several times: every message arrives at
# least once, and each message (one event revision) always carries the same webhook-id.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_webhook.sh"
start_sim --zones 3
start_receiver --delay-ms 5
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 10m}
state_dir: $T/state
log: {level: warn}
webhooks:
  hook: {url: "http://127.0.0.1:$RECV_PORT/hook", concurrency: 4}
rules:
  - name: all
    when: {kind: event}
    to: [{webhook: hook}]
CFG
N=300
for i in $(seq 0 2); do
	z=$(zone_n $i)
	for j in $(seq 1 $((N / 3))); do
		printf '{"zone_id":"%s","flags":["motion"],"severity":"normal"}\n' "$z"
	done
done >"$T/events.jsonl"
while read -r body; do sim_post /_sim/events "$body" | jq -r .data.id; done <"$T/events.jsonl" >"$T/ids"
[ "$(wc -l <"$T/ids")" -eq $N ] || fail "could not inject $N events"

for round in 1 2 3 4; do
	start_bridge "$T/cfg.yaml"
	sleep "0.$(shuf -i 3-9 -n 1)"
	kill -9 "$BRIDGE_PID"
	wait "$BRIDGE_PID" 2>/dev/null
	echo "round $round: killed after $(recv_count) requests so far"
done
start_bridge "$T/cfg.yaml"
all_seen() { [ "$(jq -r '.headers["webhook-id"]' "$T/recv.jsonl" | cut -d: -f2 | sort -u | grep -cFx -f "$T/ids")" -eq $N ]; }
WAIT=90 wait_for all_seen || fail "only $(jq -r '.headers["webhook-id"]' "$T/recv.jsonl" | cut -d: -f2 | sort -u | grep -cFx -f "$T/ids") of $N events arrived"
total=$(recv_count)
# one webhook-id per event: duplicates repeat the same id, never a new one
ids_per_event=$(jq -r '.headers["webhook-id"]' "$T/recv.jsonl" | sort -u | cut -d: -f2 | sort | uniq -d | wc -l)
[ "$ids_per_event" -eq 0 ] || fail "$ids_per_event events were sent under two different ids"
jq -e 'select(.headers["webhook-id"] != (.body | fromjson | .id))' "$T/recv.jsonl" >/dev/null && fail "a webhook-id differs from the body's id"
ok "$N events delivered at least once over 5 runs ($total requests, $((total - N)) duplicates with the same id)"
