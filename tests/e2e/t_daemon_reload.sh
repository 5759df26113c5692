# SIGHUP: a broken config (unknown flag in a rule) is rejected with its error and the old
# rules keep running; a good one takes over (a new rule's topic receives, a removed rule's
# topic no longer does), all without a restart.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
Z=$(sim_zone_id 0)
cfg_head "$T/head.yaml"
cfg() { # RULES_YAML
	{ cat "$T/head.yaml"; printf 'rules:\n%s\n' "$1"; } >"$T/cfg.new"
	mv "$T/cfg.new" "$T/cfg.yaml"
}
OLD_RULE='  - name: old
    when: {kind: event, flags_any: [intrusion]}
    to: [{mqtt: home, topic: "e2e/old"}]'
NEW_RULE='  - name: new
    when: {kind: event, flags_any: [motion]}
    to: [{mqtt: home, topic: "e2e/new"}]'
cfg "$OLD_RULE"
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
on() { sub_payloads "e2e/$1" | wc -l; }
inject() { sim_event "{\"zone_id\":\"$Z\",\"flags\":$1}" >/dev/null || fail "inject"; }

inject '["intrusion"]'
sub_wait 1 10 || fail "the first rule delivered nothing: $(tail -5 "$T/bridge.log")"
[ "$(on old)" -eq 1 ] || fail "not on e2e/old: $(cat "$T/sub.txt")"

# broken: an unknown flag; the new rule in the same file must not take effect either
cfg "$OLD_RULE
$NEW_RULE
  - name: broken
    when: {kind: event, flags_any: [intrusionn]}
    to: [{mqtt: home, topic: \"e2e/broken\"}]"
"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null 2>&1 && fail "the broken config passes check"
kill -HUP "$BRIDGE_PID"
WAIT=10 wait_for grep -q 'reload rejected' "$T/bridge.log" || fail "no 'reload rejected' in the log"
grep 'reload rejected' "$T/bridge.log" | grep -q "cfg.yaml:[0-9]*:[0-9]*:.*intrusionn" ||
	fail "the rejection does not name the error: $(grep 'reload rejected' "$T/bridge.log")"
bridge_alive || fail "the bridge exited on a broken config"
inject '["motion","intrusion"]'
sub_wait 2 10 || fail "the old rule stopped delivering after a rejected reload"
wait_cycles 2 # a message from the rejected new rule would have come by now
[ "$(on old)" -eq 2 ] && [ "$(on new)" -eq 0 ] ||
	fail "after the rejected reload: $(on old) on old (want 2), $(on new) on new (want 0)"
ok "broken config rejected with FILE:LINE:COL, old rules still deliver"

# good: the old rule replaced by the new one
cfg "$NEW_RULE"
n_reload=$(count_lines "$T/bridge.log" 'rules in force')
kill -HUP "$BRIDGE_PID"
swapped() { [ "$(count_lines "$T/bridge.log" 'rules in force')" -gt "$n_reload" ]; }
# the poller logs "N rules in force" when it has taken the new rules (between cycles)
WAIT=10 wait_for swapped || fail "the good config was not taken: $(tail -3 "$T/bridge.log")"
inject '["intrusion"]'
inject '["motion"]'
sub_wait 3 10 || fail "the new rule delivered nothing: $(cat "$T/sub.txt")"
wait_cycles 2 # a message from the removed old rule would have come by now
[ "$(on new)" -eq 1 ] && [ "$(on old)" -eq 2 ] ||
	fail "after the good reload: $(on new) on new (want 1), $(on old) on old (want 2)"
[ "$(sub_payloads e2e/new | jq -r .rule)" = new ] || fail "rule name on e2e/new"
bridge_alive || fail "the bridge exited"
ok "good config takes over on SIGHUP: new rule delivers, removed rule does not"
finish_bridge
