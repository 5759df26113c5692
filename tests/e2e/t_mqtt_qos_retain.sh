# Two rules sending every event to one broker with different qos and retain: each publish
# keeps its own rule's settings, though the delivery loop reads an entry's settings once per
# distinct value (the entries of the two rules alternate in the outbox).
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: kept
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/kept", qos: 0, retain: true}]
  - name: plain
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/plain", qos: 1, retain: false}]
CFG
start_sub 'e2e/#'
# a second subscriber printing each message's QoS: ready once its own probe came through
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -F '%t %q %p' -t 'e2e/#' >"$T/qos.txt" 2>"$T/qos.log" &
PIDS="$PIDS $!"
qos_ready() {
	grep -q '^e2e/probe ' "$T/qos.txt" && return 0
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t e2e/probe -m "tb-e2e-probe-$$-qos" 2>/dev/null
	return 1
}
WAIT=10 wait_for qos_ready || fail "the QoS subscriber is not receiving: $(cat "$T/qos.log")"
start_bridge "$T/cfg.yaml"
for i in 0 1 0; do
	sim_event "{\"zone_id\":\"$(sim_zone_id $i)\"}" >/dev/null || fail "unable to add an event"
done
sub_wait 6 || fail "$(sub_count) of 6 messages: $(tail -5 "$T/bridge.log")"
# the QoS subscriber is another client: its copies may come a moment after the first's
qos_n() { grep -vc '^e2e/probe ' "$T/qos.txt"; }
qos_has_all() { [ "$(qos_n)" -ge 6 ]; }
WAIT=10 wait_for qos_has_all || fail "the QoS subscriber got $(qos_n) of 6 messages"

# the QoS each publish was made with (a QoS 1 subscription gets min(publish, 1))
kept=$(grep -c '^e2e/kept 0 ' "$T/qos.txt")
plain=$(grep -c '^e2e/plain 1 ' "$T/qos.txt")
[ "$kept" = 3 ] && [ "$plain" = 3 ] ||
	fail "want 3 e2e/kept at QoS 0 and 3 e2e/plain at QoS 1: $(grep -v probe "$T/qos.txt")"
# what the broker retained: e2e/kept only
retained=$(mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t 'e2e/#' -F '%t %r' -W 2 2>/dev/null | grep -v probe)
[ "$retained" = "e2e/kept 1" ] || fail "retained: want only e2e/kept, got: $retained"
ok "each rule's qos and retain kept on one broker (3 + 3 publishes)"
