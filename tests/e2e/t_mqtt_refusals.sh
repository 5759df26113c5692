# Publishes a broker refuses become dead letters: a real mosquitto whose ACL denies the
# bridge's user one topic answers its MQTT 5 PUBACK with 0x87 (not authorized); the entry
# is then listed by `dlq list` with that reason, logged at warn and counted, while allowed
# topics keep delivering on the same connection. A broker set to `protocol: 3.1.1` cannot
# see the refusal (the documented limit), and `check` refuses an unknown protocol.
. "$(dirname "$0")/lib.sh"

# A broker with users and an ACL: "bridge" may write e2e/ok/# and the status topics only,
# "sub" may read everything. `user root` keeps a broker started as root from switching to
# the mosquitto user, which could not read files under $T.
MQTT_PORT=$(freeport)
mosquitto_passwd -b -c "$T/passwd" bridge bridge-pw >/dev/null 2>&1 || fail "mosquitto_passwd"
mosquitto_passwd -b "$T/passwd" sub sub-pw >/dev/null 2>&1 || fail "mosquitto_passwd"
cat >"$T/acl" <<ACL
user bridge
topic write e2e/ok/#
topic write tb/bridge/status
topic write old/bridge/status

user sub
topic read #
ACL
cat >"$T/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous false
password_file $T/passwd
acl_file $T/acl
persistence false
user root
CONF
/usr/sbin/mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
MQTT_PID=$!
PIDS="$PIDS $MQTT_PID"
WAIT=10 wait_for port_open "$MQTT_PORT" || fail "mosquitto did not start: $(cat "$T/mosquitto.log")"

mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -u sub -P sub-pw -q 1 -v -t 'e2e/#' \
	>"$T/sub.txt" 2>"$T/sub.log" &
SUB_PID=$!
PIDS="$PIDS $SUB_PID"

start_sim --zones 1
Z=$(sim_zone_id 0); N=$(sim_zone_name 0)
[ -n "$Z" ] && [ "$Z" != null ] || fail "no zone from the simulator"
MPORT=$(freeport)
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token, timeout: 3s}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
log: {level: info}
metrics: {listen: "127.0.0.1:$MPORT"}
mqtt:
  home: {url: "mqtt://127.0.0.1:$MQTT_PORT", username: bridge, password: bridge-pw, topic_prefix: tb, client_id: tb-e2e-home-$$}
  old: {url: "mqtt://127.0.0.1:$MQTT_PORT", username: bridge, password: bridge-pw, topic_prefix: old, client_id: tb-e2e-old-$$, protocol: 3.1.1}
rules:
  - name: allowed
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/ok/{{zone.name}}"}]
  - name: denied
    when: {kind: event, flags_any: [intrusion]}
    to: [{mqtt: home, topic: "e2e/denied/{{zone.name}}"}, {mqtt: old, topic: "e2e/denied311/{{zone.name}}"}]
CFG
"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null || fail "config rejected: $("$BRIDGE" check -c "$T/cfg.yaml" 2>&1)"
sed 's/protocol: 3.1.1/protocol: 4/' "$T/cfg.yaml" >"$T/bad.yaml"
out=$("$BRIDGE" check -c "$T/bad.yaml" 2>&1) && fail "check accepted protocol: 4"
case "$out" in *"'protocol': expected 5 or 3.1.1, found '4'"*) ;; *) fail "check said: $out" ;; esac
ok "check: protocol is 5 or 3.1.1"

start_bridge "$T/cfg.yaml"
E1=$(sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"]}") || fail "inject"
sub_wait 1 15 || fail "the allowed publish did not arrive; bridge log: $(tail -5 "$T/bridge.log")"
dead() { "$BRIDGE" dlq list -c "$T/cfg.yaml" >"$T/dlq.txt" && [ "$(wc -l <"$T/dlq.txt")" -ge 1 ]; }
WAIT=15 wait_for dead || fail "no dead letter for the denied publish; bridge log: $(tail -5 "$T/bridge.log")"
# delivered: the allowed publish, and the 3.1.1 broker's denied one, acknowledged as usual
metric() { curl -sf "http://127.0.0.1:$MPORT/metrics" | grep -qx "$1"; }
WAIT=15 wait_for metric 'tether_bridge_delivered_total 2' ||
	fail "delivered counter: $(curl -sf "http://127.0.0.1:$MPORT/metrics" | grep delivered)"
"$BRIDGE" dlq list -c "$T/cfg.yaml" >"$T/dlq.txt" || fail "dlq list failed"
cat "$T/dlq.txt"
[ "$(wc -l <"$T/dlq.txt")" -eq 1 ] || fail "expected exactly one dead letter"
jq -e --arg e "$E1" '.target == "mqtt.home" and (.msg_id | startswith("event:" + $e + ":")) and
	.message.rule == "denied" and (.reason | test("not authorized"; "i")) and
	(.reason | test("0x87"))' "$T/dlq.txt" >/dev/null || fail "dead letter fields: $(cat "$T/dlq.txt")"
grep -q 'warn.*mqtt\.home.*dead letter.*not authorized' "$T/bridge.log" ||
	fail "no warn line for the refusal: $(grep -i 'mqtt' "$T/bridge.log" | tail -5)"
[ "$(sub_payloads "e2e/ok/$N" | wc -l)" -eq 1 ] || fail "allowed topic: $(cat "$T/sub.txt")"
grep -q "e2e/denied" "$T/sub.txt" && fail "a denied publish reached the subscriber"
M=$(curl -sf "http://127.0.0.1:$MPORT/metrics") || fail "/metrics failed"
printf '%s\n' "$M" | grep -qx 'tether_bridge_dead_letters_total 1' ||
	fail "dead letters counter: $(printf '%s\n' "$M" | grep dead_letters)"
ok "MQTT 5: the ACL-denied publish is a dead letter (not authorized), logged and counted"
ok "protocol: 3.1.1: the same refusal cannot be seen (acknowledged like a delivery)"

# the refusal was about one message: the connection stays and carries the next ones
sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}" >/dev/null || fail "inject"
sub_wait 2 15 || fail "no delivery after the refusal: $(cat "$T/sub.txt"); $(tail -5 "$T/bridge.log")"
grep -q 'connection to .* lost' "$T/bridge.log" && fail "a connection dropped: $(grep lost "$T/bridge.log")"
ok "allowed topics keep delivering after a refusal"
finish_bridge
