# An operator's switch holds the wall for manual_hold: a call-up below the top of
# severity_order does not switch during it, one at the top does.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim
Z=$(sim_zone_id 0)
ctl_cfg "$T/cfg.yaml" 10m
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: intruder-callup
    when: {kind: event, flags_any: [intrusion]}
    to: [{perspective: Entrances, hold: 2m}]
CFG
start_sub 'tb/#'
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for sh -c "grep -q '^tb/perspectives ' '$T/sub.txt'" || fail "no perspectives"
ctl_wait_commands
ENT=$(persp_id Entrances)
cmd perspective Overview
WAIT=10 wait_for switches_at_least 1 || fail "the operator's switch did not happen"
ok "the operator switched to Overview"

sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"],\"severity\":\"high\"}" >/dev/null || fail inject
WAIT=10 wait_for sh -c "grep -q \"call-up of 'Entrances' by rule 'intruder-callup' dropped\" '$T/bridge.log'" ||
	fail "the call-up was not dropped: $(tail -3 "$T/bridge.log")"
[ "$(switch_count)" -eq 1 ] || fail "the call-up switched during the operator's hold: $(switches)"
ok "a high (not top) call-up does not switch during the operator's hold"

sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"],\"severity\":\"critical\"}" >/dev/null || fail inject
WAIT=10 wait_for switches_at_least 2 || fail "the critical call-up did not switch"
[ "$(switches | tail -1)" = "$ENT" ] || fail "switched to $(switches | tail -1)"
ok "a critical (top of severity_order) call-up switches through the operator's hold"
finish_bridge
