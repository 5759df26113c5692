# `make demo`'s script: one readable line per alert (time, zone, flags or plate with its
# watchlist and label, rule -> target), the first Slack message in full, every webhook's
# signature verified by the receiver, and Ctrl-C (SIGINT to its process group, as a terminal
# sends it) ends it with the next steps and exit status 0. The receiver's verdict is checked
# first on requests signed right, wrongly and not at all, so "verified" means something.
. "$(dirname "$0")/lib.sh"

# the receiver's check: a right signature, a wrong one, none
SECRET=whsec_$(head -c 32 /dev/urandom | base64 -w0)
start_receiver --secret "$SECRET"
BODY='{"a":1}'
TS=$(date +%s)
KEY=$(printf '%s' "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
SIG=$(printf 'msg_1.%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY" -binary | base64)
post() { curl -sf -o /dev/null -d "$BODY" "$@" "http://127.0.0.1:$RECV_PORT/hook"; }
post -H 'webhook-id: msg_1' -H "webhook-timestamp: $TS" -H "webhook-signature: v1,bad v1,$SIG" || fail "post"
post -H 'webhook-id: msg_1' -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG=" || fail "post"
post || fail "post"
got=$(jq -r .signature "$T/recv.jsonl" | tr '\n' ' ')
[ "$got" = "verified mismatch unsigned " ] || fail "receiver verdicts: $got"
ok "the receiver verifies Standard Webhooks signatures"

# the demo, in its own process group as a terminal's foreground job
set -m
"$ROOT/scripts/demo.sh" >"$T/demo.out" 2>&1 &
DEMO=$!
set +m
PIDS="$PIDS $DEMO"
ALERT='^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]  Front Door  +'
shown() { grep -qE "$1" "$T/demo.out"; }
WAIT=30 wait_for shown "${ALERT}motion,intrusion \[high\] +rule intruder +-> mqtt tether/alerts/Front Door$" ||
	fail "no readable MQTT alert line: $(tail -20 "$T/demo.out")"
WAIT=30 wait_for shown "${ALERT}plate AB12 CDF on stolen \(demo stolen car\) +rule watched-plate +-> webhook receiver, signature verified$" ||
	fail "no readable webhook line with a verified signature: $(tail -20 "$T/demo.out")"
WAIT=30 wait_for shown '^\[webhook chat\] the first Slack message, exactly as sent \(signature verified\):$' ||
	fail "no Slack message shown: $(tail -20 "$T/demo.out")"
ok "alerts as readable lines, a Slack message, signatures verified"

kill -INT -- -"$DEMO"
wait "$DEMO"
rc=$?
[ $rc -eq 0 ] || fail "Ctrl-C: exit status $rc: $(tail -20 "$T/demo.out")"
grep -q '"text": "motion,intrusion in Front Door at ' "$T/demo.out" || fail "the Slack body is not shown in full"
[ "$(grep -c '^\[webhook chat\] the first Slack message' "$T/demo.out")" -eq 1 ] || fail "the Slack body is shown more than once"
grep -q '^{"' "$T/demo.out" && fail "raw JSON lines: $(grep '^{"' "$T/demo.out" | head -3)"
grep -q '^  cp config/example.yaml' "$T/demo.out" || fail "no next steps"
grep -q 'tether-bridge check -c' "$T/demo.out" || fail "next steps: no check"
grep -q 'tether-bridge explain -c' "$T/demo.out" || fail "next steps: no explain"
ok "Ctrl-C stops the demo with the next steps and exit status 0"
