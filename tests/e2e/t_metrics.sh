# The metrics endpoint: /healthz is 200 while polls reach the API, /metrics counts the
# messages queued and delivered in the Prometheus text format, per target too (deliveries,
# failures, outbox entries, broker connected), and API errors from the very first request.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
MPORT=$(freeport)
NOPORT=$(freeport) # nothing listens there: every webhook attempt fails
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
metrics: {listen: "127.0.0.1:$MPORT"}
severity_order: [normal, medium, high, critical]   # "low" is outside it
webhooks:
  nowhere: {url: "http://127.0.0.1:$NOPORT/hook"}
rules:
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/all"}]
  - name: hook
    when: {kind: event, flags_any: [intrusion]}
    to: [{webhook: nowhere}]
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
# per target: the labelled series, a broker connected, a webhook failing
lval() { printf '%s\n' "$M" | awk -v n="$1{target=\"$2\"}" '$1 == n { print $2 }'; }
[ "$(lval tether_bridge_deliveries_total mqtt.home)" -ge 3 ] || fail "mqtt.home deliveries: $(lval tether_bridge_deliveries_total mqtt.home)"
[ "$(lval tether_bridge_deliveries_total webhook.nowhere)" = 0 ] || fail "webhook.nowhere deliveries: $(lval tether_bridge_deliveries_total webhook.nowhere)"
[ "$(lval tether_bridge_broker_connected mqtt.home)" = 1 ] || fail "mqtt.home not connected: $(lval tether_bridge_broker_connected mqtt.home)"
[ -z "$(lval tether_bridge_broker_connected webhook.nowhere)" ] || fail "a webhook has a broker gauge"
printf '%s\n' "$M" | grep -q '^# TYPE tether_bridge_broker_connected gauge$' || fail "no TYPE line for the gauge"
sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"]}" >/dev/null
failed() {
	M=$(curl -sf "http://127.0.0.1:$MPORT/metrics") && [ "$(lval tether_bridge_delivery_failures_total webhook.nowhere)" -ge 1 ]
}
WAIT=10 wait_for failed || fail "webhook.nowhere failures: $(lval tether_bridge_delivery_failures_total webhook.nowhere)"
ok "per target: mqtt.home $(lval tether_bridge_deliveries_total mqtt.home) delivered, webhook.nowhere $(lval tether_bridge_delivery_failures_total webhook.nowhere) failed"
stop_mosquitto
down() {
	M=$(curl -sf "http://127.0.0.1:$MPORT/metrics") && [ "$(lval tether_bridge_broker_connected mqtt.home)" = 0 ]
}
WAIT=10 wait_for down || fail "broker_connected still $(lval tether_bridge_broker_connected mqtt.home) with the broker down"
sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}" >/dev/null
waiting() {
	M=$(curl -sf "http://127.0.0.1:$MPORT/metrics") && [ "$(lval tether_bridge_target_outbox_entries mqtt.home)" -ge 1 ]
}
WAIT=10 wait_for waiting || fail "mqtt.home outbox entries: $(lval tether_bridge_target_outbox_entries mqtt.home)"
ok "broker down: connected 0, $(lval tether_bridge_target_outbox_entries mqtt.home) entries waiting for mqtt.home"
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
stop_bridge
# API errors count from the first request: a bridge whose API never answers shows them
DEADAPI=$(freeport)
MPORT2=$(freeport)
sed -e "s#$SIM_URL#http://127.0.0.1:$DEADAPI#" -e "s#$T/state#$T/state2#" \
	-e "s#127.0.0.1:$MPORT#127.0.0.1:$MPORT2#" "$T/cfg.yaml" >"$T/cfg2.yaml"
start_bridge "$T/cfg2.yaml"
apierr() {
	M=$(curl -sf "http://127.0.0.1:$MPORT2/metrics") && [ "$(val tether_bridge_api_errors_total)" -ge 1 ]
}
WAIT=10 wait_for apierr || fail "a failing first request not counted: $(val tether_bridge_api_errors_total)"
ok "the first request failing counts as an API error: $(val tether_bridge_api_errors_total)"
# contrib's alert rules and dashboard: valid, and naming only metrics the bridge serves
for f in "$ROOT/contrib/prometheus-alerts.yml" "$ROOT/contrib/grafana-dashboard.json"; do
	for name in $(grep -o 'tether_bridge_[a-z_]*' "$f" | sort -u); do
		printf '%s\n' "$M" | grep -q "^# TYPE $name " || fail "$f names $name, which /metrics does not serve"
	done
done
jq -e '.panels | length > 0' "$ROOT/contrib/grafana-dashboard.json" >/dev/null || fail "the dashboard is not valid JSON"
if command -v promtool >/dev/null; then
	promtool check rules "$ROOT/contrib/prometheus-alerts.yml" >"$T/promtool.txt" 2>&1 || fail "promtool: $(cat "$T/promtool.txt")"
	ok "promtool accepts the alert rules"
elif python3 -c 'import yaml' 2>/dev/null; then
	python3 -c 'import sys, yaml; assert yaml.safe_load(open(sys.argv[1]))["groups"]' \
		"$ROOT/contrib/prometheus-alerts.yml" || fail "the alert rules are not valid YAML"
fi
ok "contrib's alerts and dashboard name served metrics only"
