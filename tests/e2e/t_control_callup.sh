# Alarm call-up: an intrusion switches the wall to the zone's perspective (auto) and holds
# it; during the hold a lower-severity call-up is dropped and a higher one pre-empts it;
# when the hold ends the wall goes back to home_perspective (by: home). tb/perspective
# says who put the wall where, every step.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim
Z=$(sim_zone_id 0)
ctl_cfg "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: intruder-callup
    when: {kind: event, flags_any: [intrusion]}
    to: [{perspective: auto, hold: 10s}]
  - name: tripwire-callup
    when: {kind: event, flags_any: [tripwire]}
    to: [{perspective: Overview, hold: 10s}]
CFG
start_sub 'tb/#'
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for sh -c "grep -q '^tb/perspectives ' '$T/sub.txt'" || fail "no perspectives"
ENT=$(persp_id Entrances)
OVR=$(persp_id Overview)
wall() { sub_payloads tb/perspective | tail -1; }
wall_by() { [ "$(wall | jq -r .by)" = "$1" ] && [ "$(wall | jq -r .name)" = "$2" ]; }

sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"],\"severity\":\"medium\"}" >/dev/null || fail inject
WAIT=15 wait_for switches_at_least 1 || fail "no call-up: $(tail -3 "$T/bridge.log")"
[ "$(switches | tail -1)" = "$ENT" ] || fail "auto chose $(switches | tail -1), not Entrances ($ENT)"
WAIT=5 wait_for wall_by rule:intruder-callup Entrances || fail "tb/perspective: $(wall)"
wall | jq -e '.hold_until | test("Z$")' >/dev/null || fail "no hold_until: $(wall)"
ok "intrusion: the wall shows the zone's perspective (Entrances), held by rule:intruder-callup"

sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"tripwire\"],\"severity\":\"low\"}" >/dev/null || fail inject
WAIT=10 wait_for sh -c "grep -q \"call-up of 'Overview' by rule 'tripwire-callup' dropped\" '$T/bridge.log'" ||
	fail "the lower call-up was not dropped: $(tail -3 "$T/bridge.log")"
[ "$(switch_count)" -eq 1 ] || fail "a lower severity switched: $(switches)"
ok "a lower-severity call-up is dropped during the hold"

sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"tripwire\"],\"severity\":\"high\"}" >/dev/null || fail inject
WAIT=10 wait_for switches_at_least 2 || fail "the higher call-up did not switch"
[ "$(switches | sed -n 2p)" = "$OVR" ] || fail "pre-empted to $(switches | sed -n 2p)"
WAIT=5 wait_for wall_by rule:tripwire-callup Overview || fail "tb/perspective: $(wall)"
ok "a higher-severity call-up pre-empts the hold"

WAIT=25 wait_for wall_by home Overview || fail "did not go home: $(wall)"
[ "$(switch_count)" -eq 3 ] && [ "$(switches | sed -n 3p)" = "$OVR" ] || fail "switches: $(switches)"
wall | jq -e '.hold_until == null' >/dev/null || fail "home holds: $(wall)"
ok "when the hold ends the wall goes home (by: home, no hold)"
finish_bridge
