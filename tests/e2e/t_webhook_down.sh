# A receiver that hangs is timed out (and retried); a receiver that is down gets everything
# once it is back, in order per zone; a failing webhook does not hold up another.
. "$(dirname "$0")/lib.sh"
start_sim --zones 2
RECV_FIXED_PORT=$(freeport)
start_receiver --delay-ms 2500
OTHER_LOG=$T/other.jsonl
"$TOOLS/receiver" --port 0 --port-file "$T/other.port" --log "$OTHER_LOG" >/dev/null 2>&1 &
PIDS="$PIDS $!"
wait_for test -s "$T/other.port" || fail "second receiver did not start"
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
webhooks:
  slow: {url: "http://127.0.0.1:$RECV_PORT/hook", timeout: 1s}
  other: {url: "http://127.0.0.1:$(cat "$T/other.port")/hook"}
rules:
  - name: all
    when: {kind: event}
    to: [{webhook: slow}, {webhook: other}]
CFG
start_bridge "$T/cfg.yaml"
Z1=$(zone_n 0)
Z2=$(zone_n 1)

# 1. hanging receiver: the request is cut at 1 s and retried; the other webhook is served
E=$(inject_event "$Z1" '["motion"]')
WAIT=15 wait_for grep -q "$E" "$OTHER_LOG" || fail "the healthy webhook was held up"
WAIT=15 wait_for recv_at_least 2 || fail "the hanging request was not retried"
grep -q "webhook.slow: Timeout" "$T/bridge.log" || grep -qi "timed out" "$T/bridge.log" || fail "no timeout logged"
ok "hanging receiver timed out and retried; other webhook unaffected"

# 2. receiver down: events queue, then all arrive in order per zone once it is back
stop_receiver
# distinct start times (seconds apart, inside the lookback) give each zone one order
for i in 1 2 3 4 5; do
	inject_event "$Z1" '["motion"]' high "$(iso_ago $((10 - i)))" >>"$T/z1.ids"
	inject_event "$Z2" '["motion"]' high "$(iso_ago $((10 - i)))" >>"$T/z2.ids"
done
wait_cycles 2 # all ten are in the outbox
: >"$T/recv.jsonl"
start_receiver
WAIT=60 wait_for sh -c "for e in \$(cat $T/z1.ids $T/z2.ids); do grep -q \"\$e\" $T/recv.jsonl || exit 1; done" ||
	fail "not every queued event arrived after the receiver came back"
for z in z1 z2; do
	got=$(jq -r '.body | fromjson | .source_id' "$T/recv.jsonl" | grep -Fx -f "$T/$z.ids" | awk '!seen[$0]++')
	[ "$got" = "$(cat "$T/$z.ids")" ] || fail "$z out of order: $(echo $got) vs $(echo $(cat "$T/$z.ids"))"
done
ok "down receiver got all 10 queued messages, in order per zone"
kill -0 "$BRIDGE_PID" || fail "the bridge died"
