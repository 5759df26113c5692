# Home Assistant discovery on a real broker: every retained config validates against the
# keys and types of Home Assistant's docs (tests/data/homeassistant/schema.json), names
# topics the bridge really publishes or subscribes to; binary sensors follow open and
# complete events (retained), the Detection and rule events fire (not retained), and a
# plate read brings the plate entities.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
Z0=$(sim_zone_id 0); N0=$(sim_zone_name 0)
Z1=$(sim_zone_id 1)
[ -n "$Z0" ] && [ "$Z0" != null ] || fail "no zones from the simulator"
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token, timeout: 3s}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
mqtt:
  home:
    url: "mqtt://127.0.0.1:$MQTT_PORT"
    topic_prefix: tb
    client_id: tb-e2e
    homeassistant: {off_delay: 2s}
rules:
  - name: person at night
    when: {kind: event, flags_any: [face, intrusion]}
    to:
      - homeassistant: home
CFG
"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null || fail "config rejected: $("$BRIDGE" check -c "$T/cfg.yaml")"
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t 'homeassistant/#' >"$T/disc.txt" 2>/dev/null &
PIDS="$PIDS $!"
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t 'tb/#' >"$T/pub.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_probe 'homeassistant/#' "$T/disc.txt"
sub_probe 'tb/#' "$T/pub.txt"
start_bridge "$T/cfg.yaml"

ZID=$(printf '%s' "$Z0" | tr -c 'A-Za-z0-9_\n-' _)
cfgs() { grep -c '/config {' "$T/disc.txt" || true; }
cfgs_at_least() { [ "$(cfgs)" -ge "$1" ]; }
# bridge: 5 entities; per zone: Detection + 4 binary sensors; 1 rule
WAIT=15 wait_for cfgs_at_least 16 || fail "only $(cfgs) configs: $(tail -5 "$T/bridge.log")"
ok "discovery: $(cfgs) configs published"

# an open event with motion and face: both sensors ON, the rule fires, the Detection event
# is named by its most important flag (face before motion)
E=$(sim_event "{\"zone_id\":\"$Z0\",\"flags\":[\"motion\",\"face\"],\"complete\":false}") || fail "inject"
has() { grep -q -- "$1" "$T/pub.txt"; }
WAIT=15 wait_for has "tb/ha/zone/$ZID/motion ON" || fail "motion not ON: $(cat "$T/pub.txt")"
has "tb/ha/zone/$ZID/face ON" || fail "face not ON"
WAIT=10 wait_for has "tb/ha/rule/person_at_night_" || fail "rule event not published"
grep "^tb/ha/rule/" "$T/pub.txt" | head -1 | sed 's/^[^ ]* //' | jq -e --arg e "$E" \
	'.event_type == "fired" and .source_id == $e and .rule == "person at night"' >/dev/null ||
	fail "rule event payload: $(grep '^tb/ha/rule/' "$T/pub.txt")"
grep "^tb/ha/zone/$ZID/detection " "$T/pub.txt" | head -1 | sed 's/^[^ ]* //' |
	jq -e '.event_type == "face" and (.flags | index("motion"))' >/dev/null ||
	fail "detection payload: $(grep detection "$T/pub.txt")"
ok "open event: binary sensors ON, Detection 'face', rule entity fired"
quiet_for 3 "longer than off_delay: an open event stays ON"
[ "$(grep -c "tb/ha/zone/$ZID/motion OFF" "$T/pub.txt")" -eq 0 ] || fail "an open event turned OFF"
sim_patch "/_sim/events/$E" '{"complete":true}' >/dev/null || fail "complete"
WAIT=15 wait_for has "tb/ha/zone/$ZID/motion OFF" || fail "motion not OFF after completion"
ok "completion turns the sensors OFF; off_delay never closes an open event"

# an event that arrives complete: ON, then OFF off_delay later
sim_event "{\"zone_id\":\"$Z0\",\"flags\":[\"intrusion\"]}" >/dev/null || fail "inject"
WAIT=15 wait_for has "tb/ha/zone/$ZID/intrusion ON" || fail "intrusion not ON"
WAIT=15 wait_for has "tb/ha/zone/$ZID/intrusion OFF" || fail "intrusion not OFF after off_delay"
ok "complete on arrival: ON, then OFF after off_delay"

# retained state: a new subscriber sees OFF at once; events are not retained
R=$(mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -v -t "tb/ha/zone/$ZID/#" -W 2 2>/dev/null)
printf '%s\n' "$R" | grep -q "tb/ha/zone/$ZID/intrusion OFF" || fail "state not retained: $R"
printf '%s\n' "$R" | grep -q "detection" && fail "the Detection event is retained"
R=$(mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -v -t "tb/ha/rule/#" -W 1 2>/dev/null)
[ -z "$R" ] || fail "the rule event is retained: $R"
ok "binary sensor states retained, events not"

# a plate read brings the zone's plate entities, then their state
Z1ID=$(printf '%s' "$Z1" | tr -c 'A-Za-z0-9_\n-' _)
sim_plate "{\"zone_id\":\"$Z1\",\"plate_number\":\"AB12CDE\"}" >/dev/null || fail "inject"
WAIT=15 wait_for has "tb/ha/zone/$Z1ID/plate_event " || fail "plate event not published"
grep -q "homeassistant/sensor/tb-e2e/zone_${Z1ID}_last_plate/config {" "$T/disc.txt" ||
	fail "no Last plate config"
grep "^tb/ha/zone/$Z1ID/plate " "$T/pub.txt" | tail -1 | sed 's/^[^ ]* //' |
	jq -e '.plate == "AB12CDE" and .country == "GBR"' >/dev/null || fail "plate state"
ok "first plate read: Last plate sensor and Plate event"

# every flag of every zone once, so that each state topic a config names has been used
sim_event "{\"zone_id\":\"$Z0\",\"flags\":[\"car\"]}" >/dev/null || fail "inject"
sim_event "{\"zone_id\":\"$Z1\",\"flags\":[\"motion\",\"face\",\"intrusion\",\"car\"]}" >/dev/null || fail "inject"
WAIT=15 wait_for has "tb/ha/zone/$Z1ID/car ON" || fail "zone 1 car not ON"
WAIT=15 wait_for has "tb/ha/zone/$ZID/car ON" || fail "zone 0 car not ON"

# every config: keys and types from the docs, every topic real. The button's command is
# checked by pressing it: the bridge asks the API for zones again.
WAIT=10 wait_for has "tb/ha/bridge {" || fail "no bridge state"
before=$(sim_get /_sim/requests | jq '[.requests[] | select(.path == "/api/v3p/zones")] | length')
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t tb/cmd/refresh -m '{}'
zreq() { [ "$(sim_get /_sim/requests | jq '[.requests[] | select(.path == "/api/v3p/zones")] | length')" -gt "$before" ]; }
WAIT=10 wait_for zreq || fail "the refresh button did not refresh the zones"
sub_lines "$T/disc.txt" >"$T/disc-only.txt"
sub_lines "$T/pub.txt" >"$T/pub-only.txt"
python3 "$ROOT/tests/e2e/ha_validate.py" "$ROOT/tests/data/homeassistant/schema.json" \
	"$T/disc-only.txt" "$T/pub-only.txt" homeassistant tb/bridge/status tb/cmd/refresh >"$T/val.txt" ||
	fail "schema: $(cat "$T/val.txt")"
# bridge 5, two zones of 5, one rule, the plate zone's 2
grep -q "^18 configs valid, 18 unique ids" "$T/val.txt" || fail "expected 18 configs: $(cat "$T/val.txt")"
ok "schema: $(cat "$T/val.txt"); refresh button works"
finish_bridge
