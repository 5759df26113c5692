# `dlq list|replay --target NAME`: a bare name ("slack" for webhook.slack) is accepted when
# only one target has it; an ambiguous or unknown name exits 1 naming the known targets,
# instead of exiting 0 having matched nothing.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
start_receiver
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
mqtt:
  alerts: {url: "mqtt://127.0.0.1:$MQTT_PORT"}
webhooks:
  slack: {url: "http://127.0.0.1:$RECV_PORT/hook", timeout: 5s}
  alerts: {url: "http://127.0.0.1:$RECV_PORT/other", timeout: 5s}
rules:
  - name: all
    when: {kind: event}
    to: [{webhook: slack}]
CFG
recv_script 400
start_bridge "$T/cfg.yaml"
E=$(inject_event "$(first_zone)" '["motion"]')
dead() { [ "$("$BRIDGE" dlq list -c "$T/cfg.yaml" | wc -l)" -ge 1 ]; }
WAIT=20 wait_for dead || fail "no dead letter for the 400: $(tail -3 "$T/bridge.log")"
stop_bridge

out=$("$BRIDGE" dlq list -c "$T/cfg.yaml" --target slack) || fail "dlq list --target slack failed"
[ "$(printf '%s\n' "$out" | jq -r .target)" = webhook.slack ] ||
	fail "--target slack did not list the dead letter of webhook.slack: '$out'"
ok "a bare name selects the one target that has it"

"$BRIDGE" dlq list -c "$T/cfg.yaml" --target nosuch >"$T/out.txt" 2>"$T/err.txt"
rc=$?
[ $rc -eq 1 ] || fail "unknown target: exit $rc, want 1"
[ ! -s "$T/out.txt" ] || fail "unknown target printed: $(cat "$T/out.txt")"
grep -q "no target 'nosuch'; known targets: mqtt.alerts, webhook.alerts, webhook.slack" "$T/err.txt" ||
	fail "unknown target: $(cat "$T/err.txt")"
ok "an unknown target exits 1 naming the known ones"

"$BRIDGE" dlq replay -c "$T/cfg.yaml" --target alerts >"$T/out.txt" 2>"$T/err.txt"
rc=$?
[ $rc -eq 1 ] || fail "ambiguous target: exit $rc, want 1"
grep -q "target 'alerts' is ambiguous.*mqtt.alerts webhook.alerts" "$T/err.txt" ||
	fail "ambiguous target: $(cat "$T/err.txt")"
ok "an ambiguous bare name exits 1 naming the candidates"

out=$("$BRIDGE" dlq replay -c "$T/cfg.yaml" --target webhook.slack) || fail "replay --target webhook.slack failed"
[ "$out" = "1 dead letter back in the outbox" ] || fail "replay: '$out'"
ok "a full name still works"
