# Binary sensors after a broker outage: with zone A's motion sensor ON for an open event,
# the broker stops; meanwhile that event completes and one opens in zone B. Once the broker
# is back (same port, its retained messages kept), a fresh subscriber reads A's sensor OFF,
# B's ON and the bridge's availability online, all retained. Then a broker that comes back
# without its retained messages (no persistence) while nothing changed: the bridge sends
# the states again on reconnecting, so they still read right.
. "$(dirname "$0")/lib.sh"
start_mosquitto_persist
start_sim --zones 2
Z0=$(sim_zone_id 0); Z1=$(sim_zone_id 1)
[ -n "$Z0" ] && [ "$Z0" != null ] || fail "no zones from the simulator"
A=$(printf '%s' "$Z0" | tr -c 'A-Za-z0-9_\n-' _)
B=$(printf '%s' "$Z1" | tr -c 'A-Za-z0-9_\n-' _)
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token, timeout: 3s}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
mqtt:
  home: {url: "mqtt://127.0.0.1:$MQTT_PORT", topic_prefix: tb, client_id: tb-e2e, homeassistant: true}
CFG
"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null || fail "config rejected: $("$BRIDGE" check -c "$T/cfg.yaml")"
start_bridge "$T/cfg.yaml"
E=$(sim_event "{\"zone_id\":\"$Z0\",\"flags\":[\"motion\"],\"complete\":false}") || fail "inject"
WAIT=15 wait_for retained_is "tb/ha/zone/$A/motion" ON || fail "zone A motion not ON: $(retained "tb/ha/zone/$A/motion")"
retained_is tb/bridge/status online || fail "not online: $(retained tb/bridge/status)"
ok "before: zone A motion ON"

stop_mosquitto
forget_pid "$MQTT_PID"
WAIT=10 wait_for grep -q "mqtt 'home'.*\(lost\|cannot connect\)" "$T/bridge.log" ||
	fail "the bridge did not notice the broker going away"
sim_patch "/_sim/events/$E" '{"complete":true}' >/dev/null || fail "complete"
sim_event "{\"zone_id\":\"$Z1\",\"flags\":[\"motion\"],\"complete\":false}" >/dev/null || fail "inject"
wait_cycles 2 # the bridge has polled both changes while the broker is down
start_mosquitto_persist "$MQTT_PORT"

states_right() {
	retained_is "tb/ha/zone/$A/motion" OFF && retained_is "tb/ha/zone/$B/motion" ON &&
		retained_is tb/bridge/status online
}
WAIT=20 wait_for states_right ||
	fail "after the outage: A '$(retained "tb/ha/zone/$A/motion")' (want OFF), B '$(retained "tb/ha/zone/$B/motion")' (want ON), availability '$(retained tb/bridge/status)'; log: $(grep -i 'mqtt\|homeassistant' "$T/bridge.log" | tail -5)"
# and they stay so once everything queued has gone out
wait_cycles 2
states_right || fail "the states changed again: A '$(retained "tb/ha/zone/$A/motion")', B '$(retained "tb/ha/zone/$B/motion")', '$(retained tb/bridge/status)'"
ok "after the outage: A OFF, B ON, availability online (retained, fresh subscriber)"

log_mark
stop_mosquitto
forget_pid "$MQTT_PID"
wait_log "mqtt 'home'.*\(lost\|cannot connect\)" 10 || fail "the bridge did not notice the broker going away"
start_mosquitto "$MQTT_PORT" # persistence false: every retained message is gone
WAIT=20 wait_for states_right ||
	fail "after a broker that lost its retained messages: A '$(retained "tb/ha/zone/$A/motion")' (want OFF), B '$(retained "tb/ha/zone/$B/motion")' (want ON), availability '$(retained tb/bridge/status)'"
ok "after a broker restart without persistence: the unchanged states are sent again"
finish_bridge
