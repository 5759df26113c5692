# The OAuth2 steps from the command line against tether-sim: `auth url` prints the
# documented authorise URL, `auth exchange CODE` stores the tokens in state_dir/token.json
# (mode 0600), `auth refresh` rotates them, and a revoked grant fails with a clear hint.
. "$(dirname "$0")/lib.sh"
start_sim --zones 1
cat >"$T/cfg.yaml" <<CFG
tether:
  base_url: "$SIM_URL"
  insecure: true
  client_id: sim-client
  client_secret: sim-secret
  redirect_uri: http://127.0.0.1/callback
state_dir: $T/state
CFG
URL=$("$BRIDGE" auth url -c "$T/cfg.yaml") || fail "auth url failed"
STATE=$(cat "$T/state/oauth-state") || fail "auth url kept no state"
[ "$URL" = "$SIM_URL/oauth/authorize?client_id=sim-client&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&response_type=code&state=$STATE" ] ||
	fail "unexpected authorise URL: $URL"
printf '%s' "$STATE" | grep -qE '^[0-9a-f]{32}$' || fail "the state is not 32 hex digits: $STATE"
ok "auth url: $URL"

# the simulator approves at once and redirects with ?code=
LOC=$(curl -s -o /dev/null -w '%{redirect_url}' "$URL")
CODE=${LOC##*code=}
CODE=${CODE%%&*}
[ -n "$CODE" ] && [ "$CODE" != "$LOC" ] || fail "no code in the redirect '$LOC'"
"$BRIDGE" auth exchange "$CODE" -c "$T/cfg.yaml" || fail "auth exchange failed"
[ "$(stat -c %a "$T/state/token.json")" = 600 ] || fail "token.json mode $(stat -c %a "$T/state/token.json")"
[ "$(stat -c %a "$T/state")" = 700 ] || fail "state_dir mode $(stat -c %a "$T/state")"
A1=$(jq -r .access_token "$T/state/token.json")
R1=$(jq -r .refresh_token "$T/state/token.json")
[ -n "$A1" ] && [ "$A1" != null ] && [ "$R1" != null ] || fail "token.json lacks tokens: $(cat "$T/state/token.json")"
curl -sf -H "Authorization: Bearer $A1" "$SIM_URL/api/v3p/zones" >/dev/null || fail "the stored token is not accepted"
ok "auth exchange stored a working token (0600)"

out=$("$BRIDGE" auth exchange "$CODE" -c "$T/cfg.yaml" 2>&1) && fail "a used code was accepted"
echo "reused code: $out"

out=$("$BRIDGE" auth refresh -c "$T/cfg.yaml" 2>"$T/refresh.err") || fail "auth refresh failed: $(cat "$T/refresh.err")"
case "$out" in "token refreshed, expires at 20"*Z) ;; *) fail "auth refresh printed '$out'" ;; esac
[ -s "$T/refresh.err" ] && fail "auth refresh wrote to stderr: $(cat "$T/refresh.err")"
A2=$(jq -r .access_token "$T/state/token.json")
[ "$A2" != "$A1" ] || fail "refresh did not change the access token"
curl -sf -H "Authorization: Bearer $A2" "$SIM_URL/api/v3p/zones" >/dev/null || fail "the refreshed token is not accepted"
ok "auth refresh rotated the token"

sim_post /_sim/faults '{"count":0,"revoke_tokens":true}' >/dev/null || fail "unable to revoke"
out=$("$BRIDGE" auth refresh -c "$T/cfg.yaml" 2>&1) && fail "refresh with a revoked grant succeeded"
case "$out" in *"auth url"*) ;; *) fail "no hint to authorise again: $out" ;; esac
ok "revoked grant: $out"

# secrets never reach the output
for s in sim-secret "$A1" "$A2"; do
	grep -rqF -- "$s" "$T"/*.log 2>/dev/null && fail "a secret appeared in a log"
done
"$BRIDGE" auth bogus -c "$T/cfg.yaml" 2>/dev/null
[ $? -eq 2 ] || fail "an unknown auth step is not a usage error"
ok "usage errors exit 2"
