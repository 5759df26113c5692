# A full outbox (max_outbox) pauses polling with a warning instead of dropping anything:
# with the broker down, 20 events wait; once it is back, all 20 arrive.
. "$(dirname "$0")/lib.sh"
start_mosquitto_persist
# a durable QoS 1 session: what the bridge publishes before the subscriber is back is kept
start_sub_durable 'e2e/#'
stop_sub
start_sim --zones 1
Z=$(sim_zone_id 0)
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
delivery: {max_outbox: 5}
rules:
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
stop_mosquitto
start_bridge "$T/cfg.yaml"
for i in $(seq 1 10); do sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}" >>"$T/ids"; done
WAIT=15 wait_for grep -q "outbox full" "$T/bridge.log" || fail "no backpressure warning"
# the warning is logged where a cycle would start: from here on no window is polled
sim_reqs_clear
for i in $(seq 1 10); do sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}" >>"$T/ids"; done
quiet_for 3 "three poll intervals: polling stays paused while the broker is down"
[ "$(sim_cycles)" -eq 0 ] || fail "polled while the outbox was full: $(sim_reqs | jq -c '.requests[-3:]')"
ok "polling paused: $(grep -m1 'outbox full' "$T/bridge.log" | sed 's/.*warn: //')"
start_mosquitto_persist "$MQTT_PORT"
# the subscriber comes back only once the outbox has drained into the broker: what was
# published meanwhile waits in its durable session, every time (not only when the bridge
# happens to reconnect first)
wait_log "polling resumed" 40 || fail "no resume logged after the broker came back"
start_sub_durable 'e2e/#'
sub_wait 20 40 || fail "only $(sub_count) of 20 arrived after the broker came back"
[ "$(sub_payloads e2e/all | jq -r .source_id | sort -u | grep -cFx -f "$T/ids")" -eq 20 ] ||
	fail "not every event arrived"
ok "all 20 events delivered after the outbox drained; polling resumed"
