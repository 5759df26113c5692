# A call-up that cannot be switched within its max_delay (the API fails it, and it is
# retried like a poll request) is not sent later: it becomes a dead letter whose reason
# says stale, and the wall is not switched.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim
Z=$(sim_zone_id 0)
ctl_cfg "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: intruder-callup
    when: {kind: event, flags_any: [intrusion]}
    to: [{perspective: auto, hold: 1m, max_delay: 2s}]
CFG
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for sh -c "grep -q 'perspectives: 2' '$T/bridge.log'" || fail "no perspectives"
# every switch fails for a while (only live_switch_preset: the path has the trailing /)
sim_fault '{"count": 20, "status": 503, "path": "/api/v3p/perspectives/"}'
sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"],\"severity\":\"high\"}" >/dev/null || fail inject
dead() { "$BRIDGE" dlq list -c "$T/cfg.yaml" --target control.wall 2>/dev/null | grep -q stale; }
WAIT=20 wait_for dead || fail "no stale dead letter: $("$BRIDGE" dlq list -c "$T/cfg.yaml"; tail -5 "$T/bridge.log")"
"$BRIDGE" dlq list -c "$T/cfg.yaml" --target control.wall | jq -e 'select(.reason | test("^stale: not sent within max_delay of 2s"))' >/dev/null ||
	fail "reason: $("$BRIDGE" dlq list -c "$T/cfg.yaml" --target control.wall)"
ok "the call-up is a dead letter: $("$BRIDGE" dlq list -c "$T/cfg.yaml" --target control.wall | jq -r .reason)"
curl -sf -X DELETE "$SIM_URL/_sim/faults" || fail "unable to clear the faults"
quiet_for 3 "the stale call-up must not be sent once the API answers again"
n=$(sim_get /_sim/requests | jq '[.requests[] | select((.path | endswith("/live_switch_preset")) and .status == 200)] | length')
[ "$n" -eq 0 ] || fail "the stale call-up was sent later ($n switches)"
ok "and it is not sent later"
finish_bridge
