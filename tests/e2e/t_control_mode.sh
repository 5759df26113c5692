# The arming mode gates a rule (when.modes), is set by `tether-bridge mode` while the daemon
# runs (picked up and published), survives a restart, and the retained state topics are
# right after the restart: tb/mode, tb/perspective (the last switch) and tb/perspectives.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim
Z=$(sim_zone_id 0)
ctl_cfg "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: armed
    when: {kind: event, flags_any: [intrusion], modes: [away, night]}
    to: [{mqtt: home, topic: "e2e/armed"}]
  - name: seen
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/seen"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for retained_is tb/mode home || fail "tb/mode at start: $(retained tb/mode)"
[ "$("$BRIDGE" mode -c "$T/cfg.yaml")" = home ] || fail "mode prints $("$BRIDGE" mode -c "$T/cfg.yaml")"
sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"]}" >/dev/null || fail inject
WAIT=15 wait_for sh -c "grep -q '^e2e/seen ' '$T/sub.txt'" || fail "the event was not polled"
quiet_for 1 "an armed match would have come before the seen one"
grep -q '^e2e/armed ' "$T/sub.txt" && fail "the armed rule matched in mode home"
ok "mode home: the armed rule does not match"

"$BRIDGE" mode away -c "$T/cfg.yaml" >/dev/null || fail "mode away failed"
WAIT=10 wait_for retained_is tb/mode away || fail "the daemon did not publish away: $(retained tb/mode)"
wait_cycles 2 # the poller reads the mode at the start of its cycle
sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"]}" >/dev/null || fail inject
WAIT=15 wait_for sh -c "grep -q '^e2e/armed ' '$T/sub.txt'" || fail "the armed rule did not match in mode away"
ok "mode away (set by the CLI, published by the daemon): the armed rule matches"

cmd perspective Entrances
WAIT=10 wait_for switches_at_least 1 || fail "no switch"
stop_bridge
# forget what the broker kept: after the restart the bridge must publish it all again
for t in tb/mode tb/perspective tb/perspectives; do
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -n -t "$t" || fail "unable to clear $t"
done
[ -z "$(retained tb/mode)" ] || fail "tb/mode still retained"
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for sh -c "grep -c 'perspectives: 2' '$T/bridge.log' | grep -q 2" || fail "second start did not read perspectives"
[ "$("$BRIDGE" mode -c "$T/cfg.yaml")" = away ] || fail "after restart the mode is $("$BRIDGE" mode -c "$T/cfg.yaml")"
WAIT=10 wait_for retained_is tb/mode away || fail "tb/mode after restart: $(retained tb/mode)"
retained tb/perspective | jq -e '.name == "Entrances" and .by == "command"' >/dev/null ||
	fail "tb/perspective after restart: $(retained tb/perspective)"
[ "$(retained tb/perspectives | jq length)" -eq 2 ] || fail "tb/perspectives after restart: $(retained tb/perspectives)"
ok "after a restart: mode away, and tb/mode, tb/perspective, tb/perspectives retained and right"
n=$(grep -c '^e2e/armed ' "$T/sub.txt")
sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"]}" >/dev/null || fail inject
WAIT=15 wait_for sh -c "[ \$(grep -c '^e2e/armed ' '$T/sub.txt') -gt $n ]" || fail "the mode did not gate after the restart"
ok "the armed rule still matches after the restart"
finish_bridge
