# SIGKILL during a burst of webhook deliveries, several times: every message arrives at
# least once, and each message (one event revision) always carries the same webhook-id
# (derived from the message id, the rule and the target), which no other message uses.
. "$(dirname "$0")/lib.sh"
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
	quiet_for "0.$(shuf -i 3-9 -n 1)" "round $round: the moment of the kill"
	kill -9 "$BRIDGE_PID"
	wait "$BRIDGE_PID" 2>/dev/null
	echo "round $round: killed after $(recv_count) requests so far"
done
start_bridge "$T/cfg.yaml"
seen() { jq -r '.body | fromjson | .source_id' "$T/recv.jsonl" | sort -u | grep -cFx -f "$T/ids"; }
all_seen() { [ "$(seen)" -eq $N ]; }
WAIT=90 wait_for all_seen || fail "only $(seen) of $N events arrived"
total=$(recv_count)
# one webhook-id per message: duplicates repeat the same id, never a new one, and no two
# messages share one
jq -r '[(.body | fromjson | .id), .headers["webhook-id"]] | @tsv' "$T/recv.jsonl" | sort -u >"$T/pairs"
ids_per_msg=$(cut -f1 "$T/pairs" | uniq -d | wc -l)
[ "$ids_per_msg" -eq 0 ] || fail "$ids_per_msg messages were sent under two different ids"
msgs_per_id=$(cut -f2 "$T/pairs" | sort | uniq -d | wc -l)
[ "$msgs_per_id" -eq 0 ] || fail "$msgs_per_id webhook-ids were used for two messages"
ok "$N events delivered at least once over 5 runs ($total requests, $((total - N)) duplicates with the same id)"
