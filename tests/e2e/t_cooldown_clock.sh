# A cooldown counts from when its alert exists, not from the start of the poll cycle that
# found it (issue 13's soak, defect C1): the events answer of the cycle that finds event A
# is held back 10 s (the sim's delay fault), the cooldown is 10 s, and a different event B
# of the zone is injected as soon as A's alert arrives. Counted from the cycle's start, the
# cooldown is over before B can be polled, so B alerts at once; counted from A's
# evaluation, B falls seconds inside it and is held back.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
Z=$(sim_zone_id 0)
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token, timeout: 20s}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
mqtt:
  home: {url: "mqtt://127.0.0.1:$MQTT_PORT", qos: 1, topic_prefix: tb, client_id: tb-e2e-$$}
rules:
  - name: cool
    when: {kind: event}
    cooldown: 10s
    to: [{mqtt: home, topic: "e2e/cool"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
wait_log 'zones: polling' || fail "the bridge did not start polling: $(tail -3 "$T/bridge.log")"
wait_cycles 2

alerts() { sub_payloads e2e/cool | wc -l; }
has() { sub_payloads e2e/cool | grep -q "\"source_id\":\"$1\""; }
# A started before any cycle that can see it and is still open: whichever of the cycle's
# /events requests is delayed (the window or the events open now), it answers with A
sim_fault '{"delay_ms": 10000, "count": 1, "path": "/api/v3p/events"}'
A=$(sim_event "{\"zone_id\":\"$Z\",\"complete\":false,\"starts_at\":\"$(iso_ago 20)\"}") ||
	fail "inject A"
WAIT=30 wait_for has "$A" || fail "A was not delivered: $(tail -3 "$T/bridge.log")"
B=$(sim_event "{\"zone_id\":\"$Z\"}") || fail "inject B"
wait_cycles 3 # B has been polled and ruled on, well inside A's 10 s
quiet_for 1 "an alert for B, if any, reaches the broker"
has "$B" && fail "B alerted within the cooldown after A: $(sub_payloads e2e/cool | cut -c1-120)"
[ "$(alerts)" -eq 1 ] || fail "$(alerts) alerts, expected A's alone"
ok "B, polled within 10 s of A's alert, was held back by the cooldown"
