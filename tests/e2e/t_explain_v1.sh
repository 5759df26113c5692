# explain on the bridge's own v1 messages (one object, JSON lines from `dlq list`, lines as
# mosquitto_sub -v prints them): the rules run again and agree with the explain of the
# Tether document they came from. And the readable layout on a terminal, JSON lines
# otherwise or with --json.
. "$(dirname "$0")/lib.sh"
D=$ROOT/tests/data/explain/webhook-json
X() { "$BRIDGE" explain -c "$D/config.yaml" --now 2020-07-09T09:00:00Z "$@"; }
X --zones "$D/zones.json" "$D/input.json" >"$T/doc.jsonl" || fail "explain of the document"
verdicts() { jq -c '[.message.id, [.rules[] | [.name, .matched]], [.deliveries[] | [.rule, .target]]]' "$1"; }
verdicts "$T/doc.jsonl" >"$T/want"
[ "$(wc -l <"$T/want")" -ge 2 ] || fail "the document explains too few resources"
jq -c .message "$T/doc.jsonl" >"$T/msgs.jsonl"

# one message object, pretty-printed over several lines
head -1 "$T/msgs.jsonl" | jq . >"$T/one.json"
X "$T/one.json" >"$T/one.out" || fail "one message: exit $?"
verdicts "$T/one.out" >"$T/got"
head -1 "$T/want" | cmp -s - "$T/got" || fail "one message: $(cat "$T/got") vs $(head -1 "$T/want")"
ok "one v1 message: the same rules match and the same deliveries"

# dlq list records, as JSON lines on stdin
jq -c '{id: 1, msg_id: .id, target: "webhook.hook", status: 500, reason: "HTTP 500", attempts: 3, failed_at: "2020-07-09T09:00:00.000Z", message: .}' \
	"$T/msgs.jsonl" >"$T/dlq.jsonl"
X - <"$T/dlq.jsonl" >"$T/dlq.out" || fail "dlq lines: exit $?"
verdicts "$T/dlq.out" | cmp -s - "$T/want" || fail "dlq lines: $(verdicts "$T/dlq.out")"
ok "dlq list lines: every message explained again"

# as mosquitto_sub -v prints them (topic, space, payload), with a line that is no message
sed 's#^#tb/alerts/back_door #' "$T/msgs.jsonl" >"$T/mqtt.txt"
echo 'tb/other {"text": "not a v1 message"}' >>"$T/mqtt.txt"
X "$T/mqtt.txt" >"$T/mqtt.out"
rc=$?
[ $rc = 1 ] || fail "a line without a message: exit $rc, not 1"
head -n -1 "$T/mqtt.out" >"$T/mqtt.ok"
verdicts "$T/mqtt.ok" | cmp -s - "$T/want" || fail "mqtt lines: $(verdicts "$T/mqtt.ok")"
tail -1 "$T/mqtt.out" | jq -e '.line == 3 and (.error | test("not a tether-bridge v1 message"))' >/dev/null ||
	fail "the bad line: $(tail -1 "$T/mqtt.out")"
ok "MQTT lines: explained, and the line with no message named (exit 1)"

# a broken message names its field
jq -c '.occurred_at = "yesterday"' "$T/one.json" >"$T/broken.json"
X "$T/broken.json" >"$T/broken.out" && fail "a broken message exits 0"
jq -e '.error | test("occurred_at")' "$T/broken.out" >/dev/null || fail "broken: $(cat "$T/broken.out")"
ok "a broken v1 message: the field at fault named"

# a terminal gets the readable layout, --json the JSON lines
script -qc "$BRIDGE explain -c $D/config.yaml --now 2020-07-09T09:00:00Z --zones $D/zones.json $D/input.json" /dev/null \
	</dev/null >"$T/tty.out" 2>&1
tr -d '\r' <"$T/tty.out" >"$T/tty.txt"
grep -q "^event 5f06c1a541092788f683f601 (new) in 'Back \"Door\" <1>' at 2020-07-09T09:58:00.250+01:00$" "$T/tty.txt" ||
	fail "no readable event line: $(head -3 "$T/tty.txt")"
grep -q '^    match to-hook$' "$T/tty.txt" || fail "no matched rule line: $(cat "$T/tty.txt")"
grep -q '^    no    templated  kind: plate$' "$T/tty.txt" || fail "no rule reason line: $(cat "$T/tty.txt")"
grep -q '^    webhook.hook -> POST http://127.0.0.1:9/\*\*\* (rule to-hook)$' "$T/tty.txt" ||
	fail "no delivery line: $(cat "$T/tty.txt")"
grep -q '^plate OW16DYA2 (new)' "$T/tty.txt" || fail "no plate line: $(cat "$T/tty.txt")"
script -qc "$BRIDGE explain -c $D/config.yaml --now 2020-07-09T09:00:00Z --zones $D/zones.json --json $D/input.json" /dev/null \
	</dev/null | tr -d '\r' >"$T/tty.json"
cmp -s "$T/tty.json" "$T/doc.jsonl" || fail "--json on a terminal differs from the JSON lines"
ok "a terminal gets the readable layout; --json and a pipe the JSON lines"
