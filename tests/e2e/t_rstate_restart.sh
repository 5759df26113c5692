# A cooldown and a plate visit survive a daemon restart: the second event in the zone and
# the second read of the plate after the restart are not published.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
Z0=$(sim_zone_id 0); N0=$(sim_zone_name 0); Z1=$(sim_zone_id 1)
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: cool
    when: {kind: event, zones: ["$N0"]}
    cooldown: 10m
    to: [{mqtt: home, topic: "e2e/cool"}]
  - name: visit
    when: {kind: plate}
    visit: 10m
    to: [{mqtt: home, topic: "e2e/visit"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
sim_event "{\"zone_id\":\"$Z0\",\"flags\":[\"motion\"],\"severity\":\"high\"}" >/dev/null || fail inject
sim_plate "{\"zone_id\":\"$Z1\",\"plate_number\":\"AB12CDE\"}" >/dev/null || fail inject
sub_wait 2 15 || fail "first alerts: $(sub_count)"
stop_bridge
ok "before restart: $(sub_count) messages"
start_bridge "$T/cfg.yaml"
wait_log 'zones: polling' || fail "the restarted bridge did not poll: $(tail -3 "$T/bridge.log")"
sim_event "{\"zone_id\":\"$Z0\",\"flags\":[\"motion\"],\"severity\":\"high\"}" >/dev/null || fail inject
sim_plate "{\"zone_id\":\"$Z1\",\"plate_number\":\"AB12CDE\"}" >/dev/null || fail inject
wait_cycles 2 # both have been polled and ruled on
stop_bridge
[ "$(sub_count)" -eq 2 ] || fail "after restart: $(sub_count) messages: $(cut -c1-60 "$T/sub.txt")"
ok "after restart: still 2 messages (cooldown and visit remembered)"
