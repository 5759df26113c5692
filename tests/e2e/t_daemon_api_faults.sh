# API faults while the daemon runs (OAuth2 tokens from `auth exchange`): 500s, a 429 with
# Retry-After, malformed, truncated, wrong-shape, huge and cut bodies, a response slower
# than the client timeout,
# a 401 (refresh_token grant, then the request again). Events injected during each fault are
# delivered afterwards, the bridge keeps running and logs the zone and endpoint. Revoked
# tokens: the failed refresh is logged with the way out; `auth exchange` + SIGHUP recovers.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
Z=$(sim_zone_id 0); ZN=$(sim_zone_name 0)
cat >"$T/cfg.yaml" <<CFG
tether:
  base_url: "$SIM_URL"
  insecure: true
  client_id: sim-client
  client_secret: sim-secret
  redirect_uri: http://127.0.0.1/cb
  timeout: 2s
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
mqtt:
  home: {url: "mqtt://127.0.0.1:$MQTT_PORT", qos: 1, topic_prefix: tb}
rules:
  - name: all
    when: {kind: any}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG

# authorise: a code from /oauth/authorize (the redirect is not followed), then exchange
authorize() {
	loc=$(curl -s -o /dev/null -w '%{redirect_url}' \
		"$SIM_URL/oauth/authorize?response_type=code&client_id=sim-client&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&state=e2e")
	code=$(printf '%s' "$loc" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
	[ -n "$code" ] || fail "no code in the redirect '$loc'"
	out=$("$BRIDGE" auth exchange "$code" -c "$T/cfg.yaml" 2>&1) || fail "auth exchange: $out"
	[ -f "$T/state/token.json" ] || fail "auth exchange wrote no token.json"
}
authorize
[ "$(stat -c %a "$T/state/token.json")" = 600 ] || fail "token.json is not 0600"
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for grep -q 'zones: polling' "$T/bridge.log" || fail "the bridge did not start polling: $(tail -3 "$T/bridge.log")"

received() { sub_payloads e2e/all | grep -q "\"source_id\":\"$1\""; }
mark() { MARK=$(wc -l <"$T/bridge.log"); }
since() { tail -n "+$((MARK + 1))" "$T/bridge.log"; }
logged() { since | grep -q -- "$1"; }
# fault NAME FAULT_JSON LOG_PATTERN [plate]: arms the fault, injects an event (or a plate
# read) while it is active, waits for its delivery and for the log line
fault() {
	mark
	sim_fault "$2"
	if [ "${4:-}" = plate ]; then
		id=$(sim_plate "{\"zone_id\":\"$Z\",\"plate_number\":\"FA$RANDOM\"}") || fail "inject"
	else
		id=$(sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}") || fail "inject"
	fi
	WAIT=${WAIT_FAULT:-15} wait_for received "$id" ||
		fail "$1: the $id injected during the fault was not delivered; log: $(since | tail -4)"
	bridge_alive || fail "$1: the bridge exited"
	if [ -z "$3" ]; then
		ok "$1: delivered after the fault"
		return
	fi
	WAIT=3 wait_for logged "$3" || fail "$1: no log line matching '$3'; log: $(since | tail -4)"
	ok "$1: delivered after the fault, logged: $(since | grep -- "$3" | head -1 | cut -c26-)"
}
EV="zone '[^']*'.*/api/v3p/events"
fault "500 x3" '{"status": 500, "count": 3, "path": "/api/v3p/events"}' "$EV.*(server)"

sim_reqs_clear
# a slow 429: Retry-After counts from the answer, not from when the request was sent
fault "429 Retry-After 2" \
	'{"status": 429, "retry_after": "2", "delay_ms": 1500, "count": 1, "path": "/api/v3p/lpr"}' \
	"zone '[^']*'.*/api/v3p/lpr.*(rate)" plate
# the 429 paused every request for 2 s (both zones, events too), not only that one; the log's
# times are when each answer was sent
ms='(.at | capture("T(?<h>[0-9]+):(?<m>[0-9]+):(?<s>[0-9]+)(\\.(?<f>[0-9]+))?") |
	((.h | tonumber) * 3600000 + (.m | tonumber) * 60000 + (.s | tonumber) * 1000 +
	 ((.f // "0") + "00" | .[0:3] | tonumber)))'
after_429() { sim_curl_reqs | jq -e '[.requests[] | select(.path | startswith("/api/v3p/"))] |
	(map(.status) | index(429)) as $i | $i != null and $i + 1 < length' >/dev/null; }
WAIT=10 wait_for after_429 || fail "429: no API request after it"
gap=$(sim_curl_reqs | jq "[.requests[] | select(.path | startswith(\"/api/v3p/\"))] as \$r |
	(\$r | map(.status) | index(429)) as \$i |
	if \$i == null or \$i + 1 >= (\$r | length) then -1 else
	((\$r[\$i + 1] | $ms) - (\$r[\$i] | $ms)) end")
[ "$gap" -ge 1900 ] ||
	fail "429: the next API request came ${gap} ms after it (Retry-After 2); $(sim_curl_reqs | jq -c '.requests[-6:]')"
ok "429: no API request for ${gap} ms after the answer"

fault "malformed JSON" '{"body": "malformed", "count": 1, "path": "/api/v3p/events"}' \
	"zone '[^']*': bad response.*poll skipped.*/api/v3p/events"
fault "truncated JSON" '{"body": "truncated", "count": 1, "path": "/api/v3p/events"}' \
	"zone '[^']*': bad response.*poll skipped.*/api/v3p/events"
fault "wrong shape (data an object)" '{"body": "wrong-shape", "count": 1, "path": "/api/v3p/events"}' \
	"zone '[^']*': bad response.*poll skipped"
# 20 MB of valid JSON (under the 64 MB limit): read, nothing to log, the lookback catches up
fault "huge body (20 MB, valid)" '{"body": "huge", "count": 1, "path": "/api/v3p/events"}' ""
fault "connection cut mid-body" '{"body": "cut", "count": 1, "path": "/api/v3p/events"}' \
	"zone '[^']*'.*/api/v3p/events"
fault "slow response (5 s, timeout 2 s)" '{"delay_ms": 5000, "count": 1, "path": "/api/v3p/events"}' \
	"$EV.*(timeout)"

# 401: refresh with the refresh_token grant, then the request again
sim_reqs_clear
fault "401" '{"status": 401, "count": 1, "path": "/api/v3p/events"}' "access token refreshed"
sim_curl_reqs | jq -e '[.requests[] | select(.path == "/oauth/token" and .method == "POST" and .status == 200)] | length >= 1' >/dev/null ||
	fail "401: no token request in the sim's log: $(sim_curl_reqs | jq -c '[.requests[] | select(.path | startswith("/oauth"))]')"
ok "401: the sim saw POST /oauth/token (refresh_token grant) answered 200"

# revoked tokens (the sim revokes the refresh tokens too): the failed refresh is logged with
# the way out and the bridge keeps running; a new authorisation and SIGHUP recover
mark
sim_fault '{"count": 0, "revoke_tokens": true}'
id=$(sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}") || fail "inject"
WAIT=10 wait_for logged "error: .*tether-bridge auth url" ||
	fail "revoked: no re-authorisation hint in the log: $(since | tail -3)"
bridge_alive || fail "revoked: the bridge exited"
# five failed polls of the zone in a row: its backoff is then 16 s, so the next try without
# the reload would come 8 to 16 s after the fifth (jitter), well after the 6 s allowed below
failed_polls() { sim_reqs | jq --arg z "$Z" '[.requests[] | select(.path == "/api/v3p/events" and
	(.query | test("(^|&)from=")) and (.query | startswith("zone_id=" + $z + "&")))] |
	(map(.status == 200) | rindex(true)) as $ok | .[(if $ok == null then 0 else $ok + 1 end):] | length'; }
five_failed() { [ "$(failed_polls)" -ge 5 ]; }
WAIT=40 wait_for five_failed || fail "revoked: $(failed_polls) failed polls of the zone in 40 s"
authorize
kill -HUP "$BRIDGE_PID"
# the new configuration (and token) is tried at once, not after the old backoff
WAIT=6 wait_for received "$id" || fail "revoked: not delivered within 6 s of auth exchange + SIGHUP; log: $(since | tail -4)"
ok "revoked tokens: refresh failure logged with the hint; exchange + SIGHUP resumes delivery at once"

wait_cycles 2
bridge_alive || fail "the bridge exited"
grep -q 'sim-secret' "$T/bridge.log" && fail "the client secret appears in the log"
ok "bridge still running after every fault"
finish_bridge
