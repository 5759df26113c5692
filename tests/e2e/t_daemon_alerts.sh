# Events and plate reads injected into tether-sim reach the right MQTT topics with the
# v1 payload (schema, id, kind, phase, flags, zone, rule, links); the ones no rule selects
# (wrong flags, wrong zone, plate not on a watchlist) are not published.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
Z0=$(sim_zone_id 0); N0=$(sim_zone_name 0)
Z1=$(sim_zone_id 1); N1=$(sim_zone_name 1)
[ -n "$Z0" ] && [ "$Z0" != null ] && [ -n "$Z1" ] || fail "no zones from the simulator"
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
watchlists:
  fam: {plates: ["AB12 CDE"]}
rules:
  - name: intrusion-z0
    when: {kind: event, zones: ["$N0"], flags_any: [intrusion, tripwire]}
    to: [{mqtt: home, topic: "e2e/alerts/{{zone.name}}"}]
  - name: fam-plate
    when: {kind: plate, watchlists: [fam]}
    to: [{mqtt: home, topic: "e2e/plates/{{plate.watchlist}}"}]
CFG
"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null || fail "config rejected: $("$BRIDGE" check -c "$T/cfg.yaml")"
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"

# not selected: motion only in zone 0, intrusion in zone 1, a plate not on the watchlist
sim_event "{\"zone_id\":\"$Z0\",\"flags\":[\"motion\"]}" >/dev/null || fail "inject"
sim_event "{\"zone_id\":\"$Z1\",\"flags\":[\"intrusion\"]}" >/dev/null || fail "inject"
sim_plate "{\"zone_id\":\"$Z0\",\"plate_number\":\"XY99ZZZ\"}" >/dev/null || fail "inject"
# selected: two events in zone 0 and a watched plate (written differently) in zone 1
DOC1=$(sim_event_doc "{\"zone_id\":\"$Z0\",\"flags\":[\"motion\",\"intrusion\"],\"severity\":\"high\"}") || fail "inject"
DOC2=$(sim_event_doc "{\"zone_id\":\"$Z0\",\"flags\":[\"tripwire\"],\"severity\":\"low\"}") || fail "inject"
P1=$(sim_plate "{\"zone_id\":\"$Z1\",\"plate_number\":\"ab12-cde\",\"country\":\"GBR\"}") || fail "inject"
E1=$(printf '%s' "$DOC1" | jq -r .data.id); U1=$(printf '%s' "$DOC1" | jq -r .data.attributes.updated_at)
E2=$(printf '%s' "$DOC2" | jq -r .data.id); U2=$(printf '%s' "$DOC2" | jq -r .data.attributes.updated_at)

sub_wait 3 15 || fail "only $(sub_count) of 3 messages arrived; bridge log: $(tail -5 "$T/bridge.log")"
wait_cycles 2 # nothing else may come of what was injected
[ "$(sub_count)" -eq 3 ] || fail "expected exactly 3 messages, got: $(cat "$T/sub.txt")"
bridge_alive || fail "the bridge exited"

TOPIC="e2e/alerts/$N0"
[ "$(sub_payloads "$TOPIC" | wc -l)" -eq 2 ] || fail "expected 2 messages on '$TOPIC': $(cat "$T/sub.txt")"
msg() { sub_payloads "$TOPIC" | jq -c "select(.source_id == \"$1\")"; }
PROJ='{schema,id,kind,phase,source_id,complete,severity,flags,zone,rule,backfill}'
check_event() { # SOURCE_ID UPDATED_AT FLAGS_JSON SEVERITY
	m=$(msg "$1")
	[ -n "$m" ] || fail "event $1 not received"
	got=$(printf '%s' "$m" | jq -cS "$PROJ")
	want=$(jq -ncS --arg id "event:$1:$2" --arg s "$1" --argjson f "$3" --arg sev "$4" \
		--arg z "$Z0" --arg n "$N0" '{schema: "tether-bridge/v1", id: $id, kind: "event",
		phase: "new", source_id: $s, complete: true, severity: $sev, flags: $f,
		zone: {id: $z, name: $n}, rule: "intrusion-z0", backfill: false}')
	[ "$got" = "$want" ] || fail "event $1: got $got, want $want"
	printf '%s' "$m" | jq -e --arg u "$SIM_URL" --arg z "$Z0" \
		'(.links.web | startswith($u + "/events?at=") and endswith("&zone=" + $z)) and
		 (.links.recording_web | startswith($u + "/recordings?at="))' >/dev/null ||
		fail "$1: links $(printf '%s' "$m" | jq -c .links)"
}
check_event "$E1" "$U1" '["motion","intrusion"]' high
check_event "$E2" "$U2" '["tripwire"]' low
ok "events: topic per zone name, v1 payload fields"

p=$(sub_payloads e2e/plates/fam)
[ -n "$p" ] || fail "plate not received on e2e/plates/fam: $(cat "$T/sub.txt")"
got=$(printf '%s' "$p" | jq -cS '{schema,kind,phase,plate,zone,rule,flags}')
want=$(jq -ncS --arg z "$Z1" --arg n "$N1" '{schema: "tether-bridge/v1", kind: "plate",
	phase: "new", plate: {number: "ab12-cde", normalized: "AB12CDE", country: "GBR",
	watchlist: "fam", label: null, distance: 0}, zone: {id: $z, name: $n}, rule: "fam-plate",
	flags: []}')
[ "$got" = "$want" ] || fail "plate: got $got, want $want"
case "$(printf '%s' "$p" | jq -r .id)" in "plate:$P1:"?*) ;; *) fail "plate: id $(printf '%s' "$p" | jq -r .id)" ;; esac
ok "plate: watchlist topic and payload; unselected events and plates not published"
finish_bridge
