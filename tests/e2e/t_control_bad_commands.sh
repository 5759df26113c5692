# Every bad command gets ok: false with its reason on tb/cmd/result, a warn line and a
# metric, changes nothing, and the daemon keeps running: an unknown command, malformed JSON,
# an unknown perspective, an unknown mode, a payload over 4,096 bytes, a retained command
# (never executed: a broker restart would replay it).
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim
METRICS_PORT=$(freeport)
ctl_cfg "$T/cfg.yaml"
echo "metrics: {listen: \"127.0.0.1:$METRICS_PORT\"}" >>"$T/cfg.yaml"
start_sub 'tb/#'
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for sh -c "grep -q '^tb/perspectives ' '$T/sub.txt'" || fail "no perspectives"
ctl_wait_commands

nres=0
# bad NAME PAYLOAD EXPECTED_ERROR_REGEX [mosquitto_pub ARGS]
bad() {
	name=$1 payload=$2 want=$3
	shift 3
	cmd "$name" "$payload" "$@"
	nres=$((nres + 1))
	WAIT=10 wait_for results_at_least $nres || fail "no result for $name '$(printf %.40s "$payload")'"
	r=$(result_n $nres)
	[ -n "$r" ] && echo "$r" | jq -e --arg c "$name" --arg w "$want" '.command == $c and .ok == false and (.error | test($w))' >/dev/null ||
		fail "result for $name: $r"
	bridge_alive || fail "the bridge died on $name"
	ok "$name: $(echo "$r" | jq -r .error)"
}
bad dance '"now"' "unknown command 'dance'"
bad perspective '{"perspective": "Overview"' "malformed JSON"
bad perspective '{"perspective": 3}' "malformed JSON"
bad perspective 'Nowhere' "unknown perspective 'Nowhere'"
bad mode '"vacation"' "unknown mode 'vacation'"
bad mode "$(head -c 5000 /dev/zero | tr '\0' a)" "payload over 4096 bytes"
bad mode away "retained command not executed" -r
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t tb/cmd/mode -r -n # clear the retained one
bad refresh 'please' "malformed payload"

[ "$(switch_count)" -eq 0 ] || fail "a bad command switched the wall: $(switches)"
[ "$(retained tb/mode)" = home ] || fail "a bad command changed the mode: $(retained tb/mode)"
[ "$(grep -c 'rejected:' "$T/bridge.log")" -eq $nres ] || fail "warn lines: $(grep -c 'rejected:' "$T/bridge.log") of $nres"
grep 'rejected:' "$T/bridge.log" | grep -qv 'WARN\|warn' && fail "a rejection not at warn level: $(grep 'rejected:' "$T/bridge.log" | head -2)"
ok "nothing switched, the mode is still home, one warn line each"

curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" >"$T/metrics.txt" || fail "no metrics"
for r in unknown_command:1 malformed:3 unknown_perspective:1 unknown_mode:1 too_large:1 retained:1; do
	grep -q "^tether_bridge_commands_rejected_total{reason=\"${r%%:*}\"} ${r##*:}\$" "$T/metrics.txt" ||
		fail "metric ${r%%:*}: $(grep rejected "$T/metrics.txt")"
done
grep -q '^tether_bridge_commands_accepted_total 0$' "$T/metrics.txt" || fail "accepted: $(grep accepted "$T/metrics.txt")"
ok "/metrics counts each rejection by reason"

cmd perspective Entrances
WAIT=10 wait_for switches_at_least 1 || fail "no switch after the bad commands"
ok "the daemon still switches afterwards"
finish_bridge
