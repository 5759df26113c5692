# The control CLI and check: `perspectives` lists them from the API, `switch NAME|ID` does
# one live_switch_preset (an unknown one exits 1), `mode [NAME]` prints or sets the mode (an
# unknown one exits 1); check reports unknown modes in rules, modes without control.modes
# and perspective targets without a control section at FILE:LINE:COL; explain shows a
# call-up resolved with --perspectives.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim
ctl_cfg "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: intruder-callup
    when: {kind: event, flags_any: [intrusion], modes: [home]}
    to: [{perspective: auto, hold: 2m}]
CFG
"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null || fail "check: $("$BRIDGE" check -c "$T/cfg.yaml" 2>&1)"

out=$("$BRIDGE" perspectives -c "$T/cfg.yaml") || fail "perspectives exited $?"
[ "$(echo "$out" | wc -l)" -eq 2 ] && echo "$out" | cut -f2 | grep -qx Entrances || fail "perspectives: $out"
ok "perspectives lists $(echo "$out" | cut -f2 | tr '\n' ' ')"

ENT=$(persp_id Entrances)
"$BRIDGE" switch Entrances -c "$T/cfg.yaml" >"$T/switch.out" || fail "switch exited $?"
[ "$(switches)" = "$ENT" ] || fail "switches: $(switches)"
"$BRIDGE" switch Nowhere -c "$T/cfg.yaml" 2>"$T/switch.err" && fail "an unknown perspective exited 0"
[ $? -eq 1 ] || fail "unknown perspective: exit $?"
grep -q "unknown perspective 'Nowhere'" "$T/switch.err" || fail "message: $(cat "$T/switch.err")"
[ "$(switch_count)" -eq 1 ] || fail "switches: $(switches)"
ok "switch sends one live_switch_preset; an unknown perspective exits 1"

[ "$("$BRIDGE" mode -c "$T/cfg.yaml")" = home ] || fail "mode"
"$BRIDGE" mode night -c "$T/cfg.yaml" >/dev/null || fail "mode night"
[ "$("$BRIDGE" mode -c "$T/cfg.yaml")" = night ] || fail "mode after set"
"$BRIDGE" mode vacation -c "$T/cfg.yaml" 2>"$T/mode.err"
[ $? -eq 1 ] || fail "unknown mode: not exit 1"
grep -q "unknown mode 'vacation'" "$T/mode.err" || fail "message: $(cat "$T/mode.err")"
[ "$("$BRIDGE" mode -c "$T/cfg.yaml")" = night ] || fail "the unknown mode changed it"
"$BRIDGE" mode a b -c "$T/cfg.yaml" 2>/dev/null
[ $? -eq 2 ] || fail "two modes: not a usage error"
ok "mode prints and sets; an unknown mode exits 1"

sim_get /_sim/zones >/dev/null
curl -sf -H 'Authorization: Bearer sim-static-token' "$SIM_URL/api/v3p/perspectives" >"$T/persp.json"
Z=$(sim_zone_id 0)
sim_event_doc "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"]}" >"$T/ev.json" || fail inject
"$BRIDGE" explain -c "$T/cfg.yaml" --perspectives "$T/persp.json" "$T/ev.json" >"$T/explain.out" ||
	fail "explain: $(cat "$T/explain.out")"
jq -e '.deliveries[0] | .target == "control.wall" and .perspective == "auto" and .switch_to.name == "Entrances" and .hold_ms == 120000' "$T/explain.out" >/dev/null ||
	fail "explain: $(cat "$T/explain.out")"
ok "explain resolves auto with --perspectives"

cfg_head "$T/bad.yaml"
cat >>"$T/bad.yaml" <<CFG
control:
  modes: [home, away]
rules:
  - name: a
    when: {modes: [vacation]}
    to: [{mqtt: home}]
CFG
cfg_head "$T/bad2.yaml"
cat >>"$T/bad2.yaml" <<CFG
rules:
  - name: b
    when: {modes: [away]}
    to: [{perspective: auto}]
CFG
"$BRIDGE" check -c "$T/bad.yaml" >"$T/check.out" 2>&1 && fail "check passed bad.yaml"
grep -q "bad.yaml:11:20: modes: unknown mode 'vacation'" "$T/check.out" || fail "check: $(cat "$T/check.out")"
"$BRIDGE" check -c "$T/bad2.yaml" >"$T/check2.out" 2>&1 && fail "check passed bad2.yaml"
grep -q "bad2.yaml:9:12: 'modes' needs control.modes" "$T/check2.out" || fail "check: $(cat "$T/check2.out")"
grep -q "bad2.yaml:10:11: a perspective target needs a 'control' section" "$T/check2.out" || fail "check: $(cat "$T/check2.out")"
ok "check reports the control mistakes at FILE:LINE:COL"
