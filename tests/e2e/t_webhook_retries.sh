# Webhook failures: 500 three times then 200 is retried with growing delays; a 429's
# Retry-After is honoured; a 400 becomes a dead letter seen by `dlq list`, and
# `dlq replay` delivers it once the receiver accepts it.
. "$(dirname "$0")/lib.sh"
start_sim --zones 1
start_receiver --retry-after 2
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
webhooks:
  hook: {url: "http://127.0.0.1:$RECV_PORT/hook", timeout: 5s}
rules:
  - name: all
    when: {kind: event}
    to: [{webhook: hook}]
CFG
start_bridge "$T/cfg.yaml"
Z=$(first_zone)
ms() { jq -r 'select(.body | fromjson | .source_id == "'"$1"'") | .at_ms' "$T/recv.jsonl"; }

# 1. 500, 500, 500, then 200: four attempts, each wait longer than the one before
recv_script 500,500,500,200
E1=$(inject_event "$Z" '["motion"]')
WAIT=30 wait_for recv_at_least 4 || fail "only $(recv_count) attempts for the 500s"
quiet_for 1.5 "a fifth attempt (a retry after the 200) would come now"
[ "$(ms "$E1" | wc -l)" -eq 4 ] || fail "expected 4 attempts, got $(ms "$E1" | wc -l)"
set -- $(ms "$E1")
g1=$(($2 - $1)) g2=$(($3 - $2)) g3=$(($4 - $3))
echo "gaps: $g1 $g2 $g3 ms"
[ $g1 -ge 500 ] && [ $g2 -gt $g1 ] && [ $g3 -gt $g2 ] || fail "delays do not grow: $g1 $g2 $g3"
ok "500 x3 then 200: 4 attempts with growing delays"

# 2. 429 with Retry-After: 2 -> the retry waits at least 2 s
recv_script 429,200
E2=$(inject_event "$Z" '["motion"]')
WAIT=20 wait_for recv_at_least 6 || fail "429 was not retried"
set -- $(ms "$E2")
[ $# -eq 2 ] || fail "expected 2 attempts for the 429, got $#"
[ $(($2 - $1)) -ge 1900 ] || fail "Retry-After 2 not honoured: retried after $(($2 - $1)) ms"
ok "429 retried after Retry-After ($(($2 - $1)) ms)"

# 3. 400: a dead letter, not retried
recv_script 400,200
E3=$(inject_event "$Z" '["motion"]')
WAIT=20 wait_for recv_at_least 7 || fail "the 400 request did not come"
quiet_for 2 "a retry of the 400 would come now (the first backoff is about 0.5 to 1 s)"
[ "$(ms "$E3" | wc -l)" -eq 1 ] || fail "a 400 was retried"
"$BRIDGE" dlq list -c "$T/cfg.yaml" >"$T/dlq.txt" || fail "dlq list failed"
cat "$T/dlq.txt"
[ "$(wc -l <"$T/dlq.txt")" -eq 1 ] || fail "expected one dead letter"
jq -e --arg e "$E3" '.status == 400 and .target == "webhook.hook" and (.msg_id | startswith("event:" + $e)) and .message.source_id == $e and (.reason | test("400"))' "$T/dlq.txt" >/dev/null || fail "dead letter fields"
ok "400 became a dead letter"

# 4. replay: delivered once the receiver accepts it; the dead letter is gone
recv_script 200
"$BRIDGE" dlq replay -c "$T/cfg.yaml" --target webhook.hook || fail "dlq replay failed"
WAIT=20 wait_for recv_at_least 8 || fail "the replayed message did not arrive"
quiet_for 1.5 "a second delivery of the replayed message would come now"
[ "$(ms "$E3" | wc -l)" -eq 2 ] || fail "replay delivered $(($(ms "$E3" | wc -l) - 1)) times"
[ "$(tail -n 1 "$T/recv.jsonl" | jq -r .status)" = 200 ] || fail "replay not accepted"
[ -z "$("$BRIDGE" dlq list -c "$T/cfg.yaml")" ] || fail "dead letter still listed after replay"
ok "dlq replay re-delivered the message once"
kill -0 "$BRIDGE_PID" || fail "the bridge died"
