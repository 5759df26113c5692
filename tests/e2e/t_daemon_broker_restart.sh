# The broker goes away while events keep coming (some published just before it stops,
# the rest while it is down); once it is back on the same port every message arrives, in
# the simulator's order within each zone. A durable subscriber session (-c -i, QoS 1) on a
# persistent mosquitto keeps what is published while the subscriber is away. With
# max_outbox 10 the outbox fills while the broker is down: polling pauses (logged), and
# what the API got meanwhile is fetched once deliveries catch up: backpressure, not loss.
. "$(dirname "$0")/lib.sh"
start_mosquitto_persist
start_sim --zones 3
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
delivery: {max_outbox: 10}
rules:
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/z/{{zone.id}}"}]
CFG
start_sub_durable 'e2e/#'
start_bridge "$T/cfg.yaml"
ZONES=$(sim_get /_sim/zones | jq -r '.zones[].id')
ZA=($ZONES)
[ ${#ZA[@]} -eq 3 ] || fail "expected 3 zones, got ${#ZA[@]}"
inject_round() { # COUNT: COUNT events, zones in turn
	for i in $(seq 1 "$1"); do
		z=${ZA[$((i % 3))]}
		sim_event "{\"zone_id\":\"$z\",\"flags\":[\"motion\"]}" >/dev/null || fail "inject"
	done
}
inject_round 3
sub_wait 3 10 || fail "nothing delivered before the restart: $(tail -5 "$T/bridge.log")"

inject_round 12 # some of these are in the outbox or in flight when the broker stops
stop_sub
stop_mosquitto
forget_pid "$MQTT_PID"
inject_round 15
WAIT=10 wait_for grep -q "mqtt 'home'.*\(lost\|cannot connect\)" "$T/bridge.log" ||
	fail "the bridge did not notice the broker going away"
WAIT=10 wait_for grep -q 'outbox full' "$T/bridge.log" ||
	fail "no backpressure logged with 27 messages waiting and max_outbox 10"
inject_round 15 # while polling is paused
sim_reqs_clear
quiet_for 1.5 "polling stays paused while the outbox is full and the broker down"
[ "$(sim_cycles)" -eq 0 ] || fail "polled while the outbox was full: $(sim_reqs | jq -c '.requests[-3:]')"
start_mosquitto_persist "$MQTT_PORT"
start_sub_durable 'e2e/#'
TOTAL=45
distinct() { sub_ids | sort -u | wc -l; }
has_all() { [ "$(distinct)" -ge $TOTAL ]; }
wait_progress distinct has_all || fail "only $(distinct) of $TOTAL messages after the broker came back; log: $(grep mqtt "$T/bridge.log" | tail -4)"
wait_cycles 2 # nothing more may come
bridge_alive || fail "the bridge exited"
[ "$(distinct)" -eq $TOTAL ] || fail "$(distinct) distinct messages, want $TOTAL"

# per zone: the order of first arrival is the simulator's order (starts_at, then id)
for z in $ZONES; do
	want=$(curl -sf -H 'Authorization: Bearer sim-static-token' \
		"$SIM_URL/api/v3p/events?zone_id=$z" | jq -r '.data | sort_by(.attributes.starts_at, .id) | .[].id')
	got=$(sub_payloads "e2e/z/$z" | jq -r .source_id | awk '!seen[$0]++')
	[ -n "$want" ] || fail "zone $z: no events from the simulator"
	[ "$got" = "$want" ] || fail "zone $z: arrival order differs from the simulator's
--- want
$want
--- got
$got"
done
grep -q 'polling resumed' "$T/bridge.log" || fail "polling did not resume after the backpressure"
dups=$(( $(sub_ids | wc -l) - TOTAL ))
ok "all $TOTAL messages arrived after a broker restart, in order per zone ($dups duplicates), backpressure paused and resumed polling"
finish_bridge
