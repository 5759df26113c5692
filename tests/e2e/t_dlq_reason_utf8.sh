# A receiver refusing with a long non-ASCII answer: the dead letter's reason quotes it cut
# at a character (never inside one), and `dlq list` prints every dead letter, even one whose
# reason an older version stored cut inside a character.
. "$(dirname "$0")/lib.sh"
start_sim --zones 1
EUROS=$(printf '€%.0s' $(seq 1 150)) # 450 bytes; reasons keep 200 bytes of an answer
start_receiver --script 400 --answer "$EUROS"
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
webhooks:
  hook: {url: "http://127.0.0.1:$RECV_PORT/hook"}
rules:
  - name: all
    when: {kind: event}
    to: [{webhook: hook}]
CFG
start_bridge "$T/cfg.yaml"
Z=$(first_zone)
inject_event "$Z" '["motion"]' >/dev/null
inject_event "$Z" '["intrusion"]' >/dev/null
WAIT=20 wait_for recv_at_least 2 || fail "only $(recv_count) of 2 requests arrived"
dead() { "$BRIDGE" dlq list -c "$T/cfg.yaml" 2>/dev/null | wc -l; }
two_dead() { [ "$(dead)" -eq 2 ]; }
WAIT=10 wait_for two_dead || fail "expected 2 dead letters, dlq list printed $(dead)"
finish_bridge

"$BRIDGE" dlq list -c "$T/cfg.yaml" >"$T/dlq.txt" 2>"$T/dlq.err" || fail "dlq list failed: $(cat "$T/dlq.err")"
[ "$(jq -r .reason "$T/dlq.txt" | sort -u)" = "HTTP 400: $(printf '€%.0s' $(seq 1 66))" ] ||
	fail "reason is not the answer cut at a character: $(jq -r .reason "$T/dlq.txt" | head -n 1)"
ok "a long non-ASCII answer is cut at a character in the reason"

# a dead letter whose reason ends inside a character (as older versions stored them)
sqlite3 "$T/state/state.db" \
	"UPDATE dead SET reason = CAST(X'4854545020343030E282' AS TEXT) WHERE id = (SELECT MIN(id) FROM dead)" ||
	fail "unable to edit the dead letter"
"$BRIDGE" dlq list -c "$T/cfg.yaml" >"$T/dlq.txt" 2>"$T/dlq.err" || fail "dlq list failed: $(cat "$T/dlq.err")"
[ "$(jq -c . "$T/dlq.txt" | wc -l)" -eq 2 ] || fail "dlq list printed $(wc -l <"$T/dlq.txt") of 2 dead letters"
jq -r .reason "$T/dlq.txt" | grep -qx 'HTTP 400' || fail "the broken reason is not repaired: $(jq -r .reason "$T/dlq.txt")"
ok "a reason stored cut inside a character hides no dead letter"
