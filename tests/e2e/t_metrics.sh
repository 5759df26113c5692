# The metrics endpoint: /healthz is 200 while polls reach the API, /metrics counts the
# messages queued and delivered in the Prometheus text format.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
MPORT=$(freeport)
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
metrics: {listen: "127.0.0.1:$MPORT"}
severity_order: [normal, medium, high, critical]   # "low" is outside it
rules:
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for curl -sf "http://127.0.0.1:$MPORT/healthz" || fail "/healthz never became healthy"
Z=$(sim_zone_id 0)
for i in 1 2 3; do sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}" >/dev/null; done
sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"],\"severity\":\"low\"}" >/dev/null
sub_wait 4 15 || fail "events not delivered"
M=""
val() { printf '%s\n' "$M" | awk -v n="$1" '$1 == n { print $2 }'; }
# the counters move when the broker acknowledges, which may be after the subscriber has it
acked() {
	M=$(curl -sf "http://127.0.0.1:$MPORT/metrics") && [ "$(val tether_bridge_delivered_total)" -ge 3 ]
}
WAIT=10 wait_for acked || fail "delivered_total did not reach 3: $(val tether_bridge_delivered_total)"
[ "$(val tether_bridge_event_messages_total)" -ge 3 ] || fail "event messages: $(val tether_bridge_event_messages_total)"
[ "$(val tether_bridge_outbox_queued_total)" -ge 3 ] || fail "queued: $(val tether_bridge_outbox_queued_total)"
[ "$(val tether_bridge_delivered_total)" -ge 3 ] || fail "delivered: $(val tether_bridge_delivered_total)"
[ "$(val tether_bridge_zones)" -eq 2 ] || fail "zones: $(val tether_bridge_zones)"
[ "$(val tether_bridge_unknown_severity_total)" -eq 1 ] || fail "unknown severities: $(val tether_bridge_unknown_severity_total)"
printf '%s\n' "$M" | grep -q '^# TYPE tether_bridge_delivered_total counter$' || fail "no TYPE line"
ok "/metrics: $(val tether_bridge_event_messages_total) messages, $(val tether_bridge_delivered_total) delivered"
kill -STOP "$SIM_PID"
ok "healthz while the API answers: $(curl -s "http://127.0.0.1:$MPORT/healthz")"
kill -CONT "$SIM_PID"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/nope")" = 404 ] || fail "unknown path not 404"
# SIGHUP with the metrics server running (its thread must not take the signal)
kill -HUP "$BRIDGE_PID"
WAIT=10 wait_for grep -q "reload: new configuration accepted" "$T/bridge.log" || fail "SIGHUP not handled"
wait_cycles 2 # and the bridge polls on
bridge_alive || fail "SIGHUP killed the bridge"
ok "SIGHUP reloads with the metrics server running"
