# Two rules sending one message to one webhook send two bodies (their `rule` differs): each
# goes under its own webhook-id and CloudEvents id, so a receiver that drops duplicates by id
# keeps both; the message's own id is the same in both.
. "$(dirname "$0")/lib.sh"
start_sim --zones 1
start_receiver
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
webhooks:
  json: {url: "http://127.0.0.1:$RECV_PORT/json"}
  ce: {url: "http://127.0.0.1:$RECV_PORT/ce", format: cloudevents}
rules:
  - name: intruders
    when: {kind: event, flags_any: [intrusion]}
    to: [{webhook: json}, {webhook: ce}]
  - name: everything
    when: {kind: event}
    to: [{webhook: json}, {webhook: ce}]
CFG
start_bridge "$T/cfg.yaml"
EV=$(inject_event "$(first_zone)" '["intrusion"]' high)
WAIT=20 wait_for recv_at_least 4 || fail "only $(recv_count) of 4 deliveries arrived"
quiet_for 1 "a fifth delivery (a retry of one accepted) would come now"
[ "$(recv_count)" -eq 4 ] || fail "expected exactly 4 deliveries, got $(recv_count)"

# bad FILTER FILE: true when no logged request of FILE satisfies FILTER
bad() { [ "$(jq -s "[.[] | select($1)] | length" "$2")" -eq 0 ]; }
for p in json ce; do
	grep "\"path\":\"/$p\"" "$T/recv.jsonl" >"$T/$p.jsonl"
	[ "$(wc -l <"$T/$p.jsonl")" -eq 2 ] || fail "$p: expected 2 deliveries"
	[ "$(jq -r '.headers["webhook-id"]' "$T/$p.jsonl" | sort -u | wc -l)" -eq 2 ] ||
		fail "$p: two different bodies under one webhook-id"
	bad '.headers["webhook-id"] | test("^msg_[0-9a-f]{32}$") | not' "$T/$p.jsonl" ||
		fail "$p: a webhook-id is not msg_<32 hex digits>"
	bad '.headers["webhook-id"] != .headers["idempotency-key"]' "$T/$p.jsonl" ||
		fail "$p: Idempotency-Key differs from webhook-id"
done
[ "$(jq -r '.body | fromjson | .id' "$T/json.jsonl" | sort -u | wc -l)" -eq 1 ] ||
	fail "json: the message id is not the same in both bodies"
jq -r '.body | fromjson | .id' "$T/json.jsonl" | grep -q "^event:$EV:" || fail "json: message id"
[ "$(jq -r '.body | fromjson | .rule' "$T/json.jsonl" | sort | tr '\n' ' ')" = "everything intruders " ] ||
	fail "json: one body per rule"
bad '(.body | fromjson | .id) != .headers["webhook-id"]' "$T/ce.jsonl" ||
	fail "ce: the CloudEvents id is not the webhook-id"
[ "$(jq -r '.body | fromjson | .id' "$T/ce.jsonl" | sort -u | wc -l)" -eq 2 ] ||
	fail "ce: two events share source and id"
ok "two rules, one message, one webhook: two delivery ids, one message id"
