# Home Assistant discovery with the control plane on the same broker (homeassistant and
# commands on, a control section): the arming mode and live-view selects validate against
# the schema, choosing their options as Home Assistant does (the option on command_topic)
# sets the mode and switches the wall; Home Assistant's birth message still brings every
# config again, and one refresh press is one refresh: one answer on tb/cmd/result and the
# renamed zone's configs again.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim
Z0=$(sim_zone_id 0)
[ -n "$Z0" ] && [ "$Z0" != null ] || fail "no zones from the simulator"
ctl_cfg "$T/cfg.yaml" 5m "true, homeassistant: true"
"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null || fail "config rejected: $("$BRIDGE" check -c "$T/cfg.yaml")"
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t 'homeassistant/#' >"$T/disc.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_probe 'homeassistant/#' "$T/disc.txt"
start_sub 'tb/#'
start_bridge "$T/cfg.yaml"
ctl_wait_commands

# sel OBJECT: the last config of the select OBJECT (mode, perspective)
sel() { sub_lines "$T/disc.txt" | grep "^homeassistant/select/[^/]*/$1/config {" | tail -1 | sed 's/^[^ ]* //'; }
both() { [ -n "$(sel mode)" ] && [ -n "$(sel perspective)" ]; }
WAIT=15 wait_for both || fail "no selects: $(sub_lines "$T/disc.txt" | cut -d' ' -f1 | sort)"
sel mode | jq -e '.command_topic == "tb/cmd/mode" and .state_topic == "tb/mode" and .options == ["home", "away", "night", "disarmed"]' >/dev/null ||
	fail "mode select: $(sel mode)"
sel perspective | jq -e '.command_topic == "tb/cmd/perspective" and .state_topic == "tb/perspective" and .value_template == "{{ value_json.name }}" and (.options | sort) == ["Entrances", "Overview"]' >/dev/null ||
	fail "perspective select: $(sel perspective)"
ok "a select for the arming mode (control.modes) and one for the perspectives"

# Home Assistant sends the chosen option, as is, on the select's command topic
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$(sel mode | jq -r .command_topic)" -m away
WAIT=10 wait_for retained_is tb/mode away || fail "tb/mode: $(retained tb/mode)"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$(sel perspective | jq -r .command_topic)" -m Entrances
WAIT=10 wait_for switches_at_least 1 || fail "no switch: $(tail -3 "$T/bridge.log")"
[ "$(switches | tail -1)" = "$(persp_id Entrances)" ] || fail "switched to $(switches | tail -1)"
wall_is() { [ "$(sub_payloads tb/perspective | tail -1 | jq -r .name)" = "$1" ]; }
WAIT=5 wait_for wall_is Entrances || fail "tb/perspective: $(sub_payloads tb/perspective)"
ok "choosing away and Entrances sets the mode and switches the wall; the state topics say so"

# the bridge device's configs (the zones' entities, driven by events, are t_ha_discovery's)
sub_lines "$T/disc.txt" | grep -v '/zone_' >"$T/disc-only.txt"
sub_lines "$T/sub.txt" >"$T/pub-only.txt"
python3 "$ROOT/tests/e2e/ha_validate.py" "$ROOT/tests/data/homeassistant/schema.json" \
	"$T/disc-only.txt" "$T/pub-only.txt" homeassistant tb/bridge/status \
	tb/cmd/refresh tb/cmd/mode tb/cmd/perspective >"$T/val.txt" ||
	fail "schema: $(cat "$T/val.txt")"
grep -q "^7 configs valid, 7 unique ids" "$T/val.txt" || fail "expected 7 configs: $(cat "$T/val.txt")"
ok "schema: $(cat "$T/val.txt") (the bridge's 5 and the 2 selects)"

# the one message callback routes Home Assistant's birth to discovery...
nsel() { sub_lines "$T/disc.txt" | grep -c "^homeassistant/select/"; }
n=$(nsel)
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t homeassistant/status -m online
selects_again() { [ "$(nsel)" -ge $((n + 2)) ]; }
WAIT=15 wait_for selects_again || fail "birth: the configs did not come again"
ok "Home Assistant's birth message brings the configs again"

# ...and a refresh press (the button's payload) to the control plane, which answers once
# and has Home Assistant's zones read again
r0=$(result_count)
sim_patch "/_sim/zones/$Z0" '{"name":"Front gate"}' >/dev/null || fail "rename"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t tb/cmd/refresh -m '{}'
WAIT=10 wait_for results_at_least $((r0 + 1)) || fail "no answer to the refresh"
result_n $((r0 + 1)) | jq -e '.command == "refresh" and .ok == true' >/dev/null ||
	fail "refresh answer: $(result_n $((r0 + 1)))"
renamed() { sub_lines "$T/disc.txt" | grep -q '"name":"Front gate"'; }
WAIT=15 wait_for renamed || fail "the renamed zone's configs did not come"
quiet_for 2 "a second answer to the one press would come now"
[ "$(result_count)" -eq $((r0 + 1)) ] || fail "answers to one press: $(results | tail -n +$((r0 + 1)))"
[ "$(grep -c 'command refresh on mqtt' "$T/bridge.log")" -eq 1 ] || fail "refreshes: $(grep 'refresh' "$T/bridge.log")"
ok "one refresh press: one answer, and the renamed zone is discovered again"
finish_bridge
