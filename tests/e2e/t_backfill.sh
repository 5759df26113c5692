# After downtime longer than lookback the gap is caught up in bounded windows, oldest
# first; what is found so is marked backfill: true and a max_age rule leaves it alone.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
Z=$(sim_zone_id 0)
cfg_head "$T/cfg.yaml"
sed -i 's/lookback: 5m/lookback: 3s, catchup_window: 2s/' "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: fresh
    when: {kind: event, max_age: 6s}
    to: [{mqtt: home, topic: "e2e/fresh"}]
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for grep -q "zones: polling" "$T/bridge.log" || fail "the bridge did not start polling"
sleep 2
stop_bridge TERM
# down for 12 s (lookback 3s + 3 intervals = 6s): three events start while it is down
for i in 1 2 3; do sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}" >>"$T/ids"; sleep 1; done
sleep 9
start_bridge "$T/cfg.yaml"
sub_wait 3 20 || fail "only $(sub_count) of 3 backfilled messages arrived"
sleep 2
[ "$(sub_payloads e2e/all | jq -r .source_id)" = "$(cat "$T/ids")" ] ||
	fail "backfill not oldest first: $(sub_payloads e2e/all | jq -r .source_id)"
[ "$(sub_payloads e2e/all | jq -r .backfill | sort -u)" = true ] || fail "backfill flag not set"
[ "$(sub_payloads e2e/fresh | wc -l)" -eq 0 ] || fail "max_age let a stale backfilled event through"
grep -c "e2e/all" "$T/sub.txt" >/dev/null
ok "3 events from the downtime caught up in order, marked backfill, kept from the max_age rule"

# caught up: a new event is live again
NEW=$(sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"]}")
sub_wait 5 15 || fail "the live event did not arrive on both topics"
[ "$(sub_payloads e2e/fresh | jq -r 'select(.source_id == "'"$NEW"'") | .backfill')" = false ] ||
	fail "live event marked backfill"
ok "live event after catch-up delivered with backfill false"
