# Logs for operators: JSON records carry zone, rule, target, msg_id and status as keys, the
# deliveries are logged at debug, and what stops the daemon (a state_dir it cannot write,
# credentials the API rejects) is logged at error with what to do.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim
LOG_LEVEL=debug cfg_head "$T/cfg.yaml"
sed -i 's/^log: {level: debug}$/log: {level: debug, format: json}/' "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
grep -q 'format: json' "$T/cfg.yaml" || fail "the config does not ask for JSON logs"
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
wait_cycles 1
Z=$(sim_zone_id 0)
ZN=$(sim_zone_name 0)
id=$(sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}")
sub_wait 1 15 || fail "event not delivered"
published() { grep -q '"msg":"mqtt.home: published' "$T/bridge.log"; }
WAIT=10 wait_for published || fail "no published record at debug: $(tail -3 "$T/bridge.log")"
stop_bridge
jq -e . "$T/bridge.log" >/dev/null || fail "a log line is not JSON: $(grep -v '^{' "$T/bridge.log" | head -2)"
q=$(jq -c 'select(.msg | startswith("queued ")) | {zone, rule, target, msg_id}' "$T/bridge.log" | head -1)
[ -n "$q" ] || fail "no queued record"
[ "$(printf '%s' "$q" | jq -r .zone)" = "$ZN" ] || fail "queued: zone: $q"
[ "$(printf '%s' "$q" | jq -r .rule)" = all ] || fail "queued: rule: $q"
[ "$(printf '%s' "$q" | jq -r .target)" = mqtt.home ] || fail "queued: target: $q"
mid=$(printf '%s' "$q" | jq -r .msg_id)
case "$mid" in *"$id"*) ;; *) fail "queued: msg_id $mid does not name event $id" ;; esac
p=$(jq -c --arg m "$mid" 'select(.msg | startswith("mqtt.home: published")) | select(.msg_id == $m)' "$T/bridge.log")
[ -n "$p" ] || fail "no published record with msg_id $mid"
[ "$(printf '%s' "$p" | jq -r '.level + " " + .target')" = "debug mqtt.home" ] || fail "published: $p"
ok "JSON logs: queued and published with zone, rule, target and msg_id as keys"

# a state_dir that cannot be created: error, and what to do
touch "$T/plain"
sed -e "s#^state_dir: .*#state_dir: $T/plain/state#" -e 's/format: json/format: text/' "$T/cfg.yaml" >"$T/bad-dir.yaml"
"$BRIDGE" run -c "$T/bad-dir.yaml" >"$T/bad-dir.log" 2>&1 && fail "ran with a state_dir under a file"
grep -q "error: unable to create state_dir '$T/plain/state': .*write access" "$T/bad-dir.log" ||
	fail "state_dir: $(cat "$T/bad-dir.log")"
ok "an unwritable state_dir is an error that says what to do"

# credentials the API rejects: error, and what to do; the daemon keeps trying
sed -e 's/access_token: sim-static-token/access_token: wrong-token/' -e 's/format: json/format: text/' \
	"$T/cfg.yaml" >"$T/bad-token.yaml"
start_bridge "$T/bad-token.yaml"
rejected() { grep -q "error: zones: .*the API rejects the credentials.*auth url" "$T/bridge.log"; }
WAIT=10 wait_for rejected || fail "rejected credentials: $(tail -3 "$T/bridge.log")"
bridge_alive || fail "the bridge exited on rejected credentials"
ok "rejected credentials are an error that says what to do"
