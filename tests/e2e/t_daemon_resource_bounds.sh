# Hostile documents from the API: bad resources are logged once per document with a count
# (not one line each) and the first one's text, a document over the resource limit is refused as a payload error
# naming the count, and resources of another zone than the one polled are skipped (logged
# once, counted) rather than published under the polled zone's name.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
A=$(sim_zone_id 0); AN=$(sim_zone_name 0); B=$(sim_zone_id 1)
MPORT=$(freeport)
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
metrics: {listen: "127.0.0.1:$MPORT"}
rules:
  - name: all
    when: {kind: any}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for grep -q 'zones: polling' "$T/bridge.log" || fail "the bridge did not start polling: $(tail -3 "$T/bridge.log")"
mark() { MARK=$(wc -l <"$T/bridge.log"); }
since() { tail -n "+$((MARK + 1))" "$T/bridge.log"; }
logged() { since | grep -q -- "$1"; }

# 1. 50 empty resources: one line with the count
mark
sim_fault '{"body": "many", "resources": 50, "count": 1, "path": "/api/v3p/events"}'
WAIT=10 wait_for logged "skipped 50 of 50 resources from /api/v3p/events" ||
	fail "no counted line for 50 bad resources: $(since | tail -3)"
wait_cycles 1 # the faulted document is done with
n=$(since | grep -c "resource")
[ "$n" -eq 1 ] || fail "$n log lines about the 50 bad resources, want 1: $(since | head -5)"
# the excerpt is the first bad resource's own text, not the document's
since | grep "skipped 50 of 50" | grep -q 'first starts: {}' ||
	fail "the excerpt is not the first resource's text: $(since | grep resource)"
ok "50 bad resources: one log line: $(since | grep resource | cut -c26-)"

# 2. over the resource limit: refused as a payload error naming the count
mark
sim_fault '{"body": "many", "resources": 30000, "count": 1, "path": "/api/v3p/events"}'
WAIT=10 wait_for logged "bad response.*data: 30000 resources, more than 20000" ||
	fail "30000 resources not refused: $(since | tail -3)"
[ "$(since | grep -c resource)" -eq 1 ] || fail "more than one line for 30000 resources: $(since | head -5)"
ok "30000 resources: refused, $(since | grep resource | cut -c26- | cut -c1-120)"

# 3. an event of zone A answered as zone B's: skipped, counted, never named after zone A
mark
sim_fault "{\"body\": \"rezone\", \"zone_id\": \"$B\", \"count\": 20, \"path\": \"/api/v3p/events\"}"
E=$(sim_event "{\"zone_id\":\"$A\",\"flags\":[\"motion\"]}") || fail "inject"
WAIT=10 wait_for logged "zone '$AN': skipped 1 of [0-9]* resources from /api/v3p/events of another zone (zone_id '$B')" ||
	fail "no line for the resource of another zone: $(since | tail -3)"
m=$(curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "tether_bridge_wrong_zone_resources_total" { print $2 }')
[ "${m:-0}" -ge 1 ] || fail "wrong zone metric: '$m'"
wait_cycles 2 # a message under the wrong zone would have come by now
wrong=$(sub_payloads e2e/all | jq -s --arg b "$B" --arg an "$AN" '[.[] | select(.zone.id == $b and .zone.name == $an)] | length')
[ "$wrong" -eq 0 ] ||
	fail "a resource of zone $B was published under zone '$AN': $(sub_payloads e2e/all | tail -1)"
ok "resources of another zone skipped ($m counted), none published under the polled zone's name"
bridge_alive || fail "the bridge exited"
finish_bridge
