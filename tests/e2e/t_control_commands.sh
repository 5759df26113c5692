# Operators' MQTT commands on a broker with commands: true: a perspective command switches
# the wall (the simulator logs the live_switch_preset and its id), a mode command sets the
# mode, and each gets one result on tb/cmd/result with its request_id; the retained state
# topics say where the wall and the mode are; /metrics counts commands and switches.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim
METRICS_PORT=$(freeport)
ctl_cfg "$T/cfg.yaml"
echo "metrics: {listen: \"127.0.0.1:$METRICS_PORT\"}" >>"$T/cfg.yaml"
start_sub 'tb/#'
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for sh -c "grep -q '^tb/perspectives ' '$T/sub.txt'" || fail "no tb/perspectives: $(tail -3 "$T/bridge.log")"
[ "$(sub_payloads tb/perspectives | tail -1 | jq -r '[.[].name] | sort | join(",")')" = "Entrances,Overview" ] ||
	fail "perspectives: $(sub_payloads tb/perspectives)"
sub_payloads tb/perspectives | tail -1 | jq -e '.[0] | (.id and .layout and (.zone_ids | length > 0) and (.zones | length > 0))' >/dev/null ||
	fail "perspectives fields: $(sub_payloads tb/perspectives)"
[ "$(sub_payloads tb/mode | tail -1)" = home ] || fail "mode at start: $(sub_payloads tb/mode)"
ok "state published at start: perspectives and mode"

ctl_wait_commands
ENT=$(persp_id Entrances)
OVR=$(persp_id Overview)
cmd perspective Entrances
WAIT=10 wait_for results_at_least 1 || fail "no result: $(tail -3 "$T/bridge.log")"
result_n 1 | jq -e '.command == "perspective" and .ok == true and .error == null and .request_id == null and (.at | test("Z$"))' >/dev/null ||
	fail "result: $(result_n 1)"
[ "$(switches | tail -1)" = "$ENT" ] || fail "switches: $(switches)"
ok "a plain perspective command switches (live_switch_preset $ENT)"

cmd perspective "{\"perspective\": \"$OVR\", \"request_id\": \"r-42\"}"
WAIT=10 wait_for results_at_least 2 || fail "no second result"
result_n 2 | jq -e '.ok == true and .request_id == "r-42"' >/dev/null || fail "result: $(result_n 2)"
[ "$(switches | tail -1)" = "$OVR" ] || fail "switches: $(switches)"
sub_payloads tb/perspective | tail -1 | jq -e --arg id "$OVR" '.id == $id and .name == "Overview" and .by == "command" and (.hold_until | test("Z$"))' >/dev/null ||
	fail "tb/perspective: $(sub_payloads tb/perspective)"
ok "a JSON command by id switches, echoes request_id, and tb/perspective holds it"

cmd mode '{"mode": "away", "request_id": 7}'
WAIT=10 wait_for results_at_least 3 || fail "no mode result"
result_n 3 | jq -e '.command == "mode" and .ok == true and .request_id == 7' >/dev/null || fail "result: $(result_n 3)"
WAIT=5 wait_for retained_is tb/mode away || fail "tb/mode: $(retained tb/mode)"
ok "a mode command sets the mode and tb/mode says it"

cmd refresh ''
WAIT=10 wait_for results_at_least 4 || fail "no refresh result"
result_n 4 | jq -e '.command == "refresh" and .ok == true' >/dev/null || fail "result: $(result_n 4)"
ok "refresh answers"

# MQTT 5: a command with a response topic and correlation data is answered there too
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -V 5 -q 1 -t panel/reply -F '%j' >"$T/reply.txt" 2>/dev/null &
PIDS="$PIDS $!"
# the subscriber is ready once a probe of ours came through (its lines are left out below)
reply_probe() {
	grep -q reply-probe "$T/reply.txt" && return 0
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t panel/reply -m reply-probe
	return 1
}
replies() { grep -v reply-probe "$T/reply.txt"; }
WAIT=10 wait_for reply_probe || fail "the subscriber on panel/reply is not receiving"
cmd mode night -V 5 -D publish response-topic panel/reply -D publish correlation-data corr-9
WAIT=10 wait_for results_at_least 5 || fail "no result for the MQTT 5 command"
WAIT=5 wait_for replies || fail "no answer on the response topic"
replies | jq -e '.properties["correlation-data"] == "corr-9" and (.payload | fromjson | .command == "mode" and .ok == true)' >/dev/null ||
	fail "response: $(replies)"
ok "an MQTT 5 command is answered on its response topic with its correlation data"

curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" >"$T/metrics.txt" || fail "no metrics"
grep -q '^tether_bridge_commands_accepted_total 5$' "$T/metrics.txt" || fail "accepted: $(grep commands "$T/metrics.txt")"
grep -q '^tether_bridge_switches_total 2$' "$T/metrics.txt" || fail "switches: $(grep switches "$T/metrics.txt")"
ok "/metrics counts 5 accepted commands and 2 switches"
finish_bridge
