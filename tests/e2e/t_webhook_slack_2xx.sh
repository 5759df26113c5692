# `format: slack` and a 2xx whose body is not "ok": delivered (a dead letter would be sent
# twice by a replay), not retried, and the odd answer logged once.
. "$(dirname "$0")/lib.sh"
start_sim --zones 1
start_receiver --script 200 --answer "accepted for later"
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
webhooks:
  slack: {url: "http://127.0.0.1:$RECV_PORT/slack", format: slack}
rules:
  - name: all
    when: {kind: event}
    to: [{webhook: slack}]
CFG
start_bridge "$T/cfg.yaml"
Z=$(first_zone)
inject_event "$Z" '["motion"]' >/dev/null
inject_event "$Z" '["intrusion"]' >/dev/null
WAIT=20 wait_for recv_at_least 2 || fail "only $(recv_count) of 2 messages arrived"
quiet_for 2 "Slack pacing is 1 s: a retry or a third request would have come by now"
finish_bridge
[ "$(recv_count)" -eq 2 ] || fail "expected 2 requests, got $(recv_count)"
"$BRIDGE" dlq list -c "$T/cfg.yaml" >"$T/dlq.txt" || fail "dlq list failed"
[ ! -s "$T/dlq.txt" ] || fail "a 2xx became a dead letter: $(cat "$T/dlq.txt")"
[ "$(grep -c "answer 'accepted for later'" "$T/bridge.log")" -eq 1 ] ||
	fail "the odd answer is not logged exactly once: $(grep -c 'accepted for later' "$T/bridge.log")"
ok "a Slack 2xx that is not 'ok' is delivered, once, and logged once"
