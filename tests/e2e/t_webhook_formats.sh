# Every webhook format's body, checked field by field at a real receiver; the signature
# verifies with the secret (and with either secret during a rotation) and not with another.
. "$(dirname "$0")/lib.sh"
start_sim --zones 2
start_receiver
S1=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
S2=whsec_bmV3LXNlY3JldC1mb3Itcm90YXRpb24h
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
webhooks:
  json: {url: "http://127.0.0.1:$RECV_PORT/json", secret: $S1, headers: {X-Team: ops}}
  slack: {url: "http://127.0.0.1:$RECV_PORT/slack", format: slack}
  discord: {url: "http://127.0.0.1:$RECV_PORT/discord", format: discord}
  teams: {url: "http://127.0.0.1:$RECV_PORT/teams", format: teams}
  ce: {url: "http://127.0.0.1:$RECV_PORT/ce", format: cloudevents, secrets: [$S2, $S1]}
rules:
  - name: all
    when: {kind: event, flags_any: [intrusion]}
    to:
      - {webhook: json}
      - {webhook: slack, text: "{{flags}} in {{zone.name}}"}
      - {webhook: discord, text: "{{flags}} in {{zone.name}}"}
      - {webhook: teams, text: "{{flags}} in {{zone.name}}"}
      - {webhook: ce}
CFG
start_bridge "$T/cfg.yaml"
Z=$(first_zone)
ZN=$(curl -sf -H 'Authorization: Bearer sim-static-token' "$SIM_URL/api/v3p/zones" | jq -r '.data[0].attributes.name')
EV=$(inject_event "$Z" '["intrusion","motion"]' high)
WAIT=20 wait_for recv_at_least 5 || fail "only $(recv_count) of 5 deliveries arrived"
quiet_for 1 "a sixth delivery (a retry of one accepted) would come now"
[ "$(recv_count)" -eq 5 ] || fail "expected exactly 5 deliveries, got $(recv_count)"
line() { grep "\"path\":\"/$1" "$T/recv.jsonl" | head -n 1; }
body() { line "$1" | jq -r '.body'; }
MID=$(body json | jq -r .id)
case "$MID" in "event:$EV:"*) ;; *) fail "message id '$MID' is not event:$EV:<revision>" ;; esac
# the delivery id: "msg_" + 32 hex digits of SHA-256(message id NUL rule NUL target)
did() { printf '%s\0%s\0%s' "$MID" all "webhook.$1" | sha256sum | cut -c1-32 | sed 's/^/msg_/'; }
DID=$(line json | jq -r '.headers["webhook-id"]')
[ "$DID" = "$(did json)" ] || fail "webhook-id '$DID' is not the delivery id $(did json)"

# json: the v1 message, standard headers, custom header, valid signature
[ "$(body json | jq -r .schema)" = tether-bridge/v1 ] || fail "json: schema"
[ "$(body json | jq -r .rule)" = all ] || fail "json: rule"
[ "$(body json | jq -r '.flags|join(",")')" = "motion,intrusion" ] || fail "json: flags"
[ "$(line json | jq -r '.headers["idempotency-key"]')" = "$DID" ] || fail "json: Idempotency-Key"
[ "$(line json | jq -r '.headers["x-team"]')" = ops ] || fail "json: custom header"
[ "$(line json | jq -r '.headers["user-agent"]')" = tether-bridge/0.1.0 ] || fail "json: user agent"
ts=$(line json | jq -r '.headers["webhook-timestamp"]')
now=$(date +%s)
[ $((now - ts)) -lt 60 ] && [ $((ts - now)) -lt 60 ] || fail "json: timestamp $ts is not now ($now)"
verify_sig $S1 "$(line json)" || fail "json: signature does not verify with the secret"
verify_sig $S2 "$(line json)" && fail "json: signature verifies with another secret"
[ "$(line slack | jq -r '.headers["webhook-signature"] // "none"')" = none ] || fail "slack: signed without a secret"
ok "json body, headers and signature"

# slack: text plus blocks with zone, flags, time and a link
[ "$(body slack | jq -r .text)" = "motion,intrusion in $ZN" ] || fail "slack: text"
[ "$(body slack | jq -r '.blocks[1].fields[0].text')" = "*Zone*
$ZN" ] || fail "slack: zone field"
body slack | jq -e '.blocks[1].fields[1].text | test("intrusion")' >/dev/null || fail "slack: flags field"
body slack | jq -e '.blocks[2].elements[0].text | test("^<http://127.0.0.1:[0-9]+/events\\?at=")' >/dev/null || fail "slack: link"
ok "slack body"

# discord: wait=true, content, no mentions, an embed with link and timestamp
line discord | jq -e '.path == "/discord"' >/dev/null || fail "discord: path"
grep -q '"path":"/discord"' "$T/recv.jsonl" || fail "discord: not delivered"
[ "$(body discord | jq -r .content)" = "motion,intrusion in $ZN" ] || fail "discord: content"
[ "$(body discord | jq -c .allowed_mentions)" = '{"parse":[]}' ] || fail "discord: allowed_mentions"
body discord | jq -e '.embeds[0].url | test("/events\\?at=")' >/dev/null || fail "discord: embed url"
body discord | jq -e '.embeds[0].timestamp | test("^20[0-9-]+T")' >/dev/null || fail "discord: timestamp"
ok "discord body"

# teams: an Adaptive Card message
[ "$(body teams | jq -r .type)" = message ] || fail "teams: type"
[ "$(body teams | jq -r '.attachments[0].contentType')" = application/vnd.microsoft.card.adaptive ] || fail "teams: contentType"
[ "$(body teams | jq -r '.attachments[0].content.type')" = AdaptiveCard ] || fail "teams: card"
body teams | jq -e '.attachments[0].content.actions[0].url | test("/events\\?at=")' >/dev/null || fail "teams: link"
ok "teams body"

# cloudevents: structured mode, id = delivery id, type, data = the message; rotation signature
[ "$(body ce | jq -r .specversion)" = 1.0 ] || fail "ce: specversion"
[ "$(body ce | jq -r .id)" = "$(did ce)" ] || fail "ce: id is not the delivery id"
[ "$(line ce | jq -r '.headers["webhook-id"]')" = "$(did ce)" ] || fail "ce: webhook-id"
[ "$(body ce | jq -r .type)" = is.timeline.event.new ] || fail "ce: type"
[ "$(body ce | jq -r .data.id)" = "$MID" ] || fail "ce: data"
[ "$(line ce | jq -r '.headers["content-type"]')" = application/cloudevents+json ] || fail "ce: content type"
[ "$(line ce | jq -r '.headers["webhook-signature"]' | wc -w)" -eq 2 ] || fail "ce: two signatures while rotating"
verify_sig $S1 "$(line ce)" || fail "ce: does not verify with the old secret"
verify_sig $S2 "$(line ce)" || fail "ce: does not verify with the new secret"
verify_sig whsec_b3RoZXI= "$(line ce)" && fail "ce: verifies with an unrelated secret"
ok "cloudevents body and rotated signatures"
