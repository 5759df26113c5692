# Home Assistant discovery across a restart: what was published is remembered in state.db,
# so a zone no longer polled and a rule removed while the bridge was stopped get their
# configs deleted (empty retained payloads) at the next start, and nothing else is sent;
# discovery turned off while stopped deletes every config the bridge had published.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
Z0=$(sim_zone_id 0); Z1=$(sim_zone_id 1)
[ -n "$Z0" ] && [ "$Z0" != null ] || fail "no zones from the simulator"
write_cfg() { # HOMEASSISTANT RULES...
	cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token, timeout: 3s}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
mqtt:
  home: {url: "mqtt://127.0.0.1:$MQTT_PORT", topic_prefix: tb, client_id: tb-e2e, homeassistant: $1}
rules:
CFG
	shift
	for r in "$@"; do
		printf '  - {name: %s, when: {flags_any: [intrusion]}, to: [{mqtt: home, topic: x}]}\n' "$r" >>"$T/cfg.yaml"
		[ "$r" = plain ] || sed -i '$ s/{mqtt: home, topic: x}/{homeassistant: home}/' "$T/cfg.yaml"
	done
	"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null || fail "config rejected: $("$BRIDGE" check -c "$T/cfg.yaml")"
}
# the retained configs, as Home Assistant finds them on connecting
retained_cfgs() { mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -v -t 'homeassistant/+/+/+/config' -W 1 2>/dev/null; }
n_retained() { retained_cfgs | wc -l; }
n_is() { [ "$(n_retained)" -eq "$1" ]; }

write_cfg true keep-me drop-me plain
start_bridge "$T/cfg.yaml"
# bridge 5 + 2 zones of 5 + 2 rules
WAIT=15 wait_for n_is 17 || fail "start: $(n_retained) retained configs, want 17"
retained_cfgs | sort >"$T/before.txt"
finish_bridge
ok "first run: 17 configs retained, clean stop"

# while stopped: zone 1 goes, the rule drop-me goes
curl -sf -X DELETE "$SIM_URL/_sim/zones/$Z1" || fail "delete zone"
write_cfg true keep-me plain
# live messages only (-R: not the retained ones the subscription replays)
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -R -v -t 'homeassistant/#' >"$T/live.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_probe 'homeassistant/#' "$T/live.txt"
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for n_is 11 || fail "restart: $(n_retained) retained configs, want 11: $(retained_cfgs | grep -c "zone_$Z1") of the removed zone's, $(retained_cfgs | grep -c rule_drop-me) of the removed rule's"
wait_cycles 2
quiet_for 2 "nothing more than the deletions may come"
sub_lines "$T/live.txt" >"$T/live-only.txt"
[ "$(wc -l <"$T/live-only.txt")" -eq 6 ] || fail "restart sent $(wc -l <"$T/live-only.txt") configs, want the 6 deletions: $(cat "$T/live-only.txt")"
grep -v "zone_$Z1\|rule_drop-me" "$T/live-only.txt" && fail "restart sent configs of what did not change"
# an empty payload: mosquitto_sub -v prints the topic alone, or "(null)" after it
grep -v '^[^ ]*\( (null)\)\?$' "$T/live-only.txt" && fail "a deletion with a payload"
retained_cfgs | sort >"$T/after.txt"
grep -v "zone_$Z1\|rule_drop-me" "$T/before.txt" | cmp -s - "$T/after.txt" ||
	fail "the kept configs changed: $(diff <(grep -v "zone_$Z1\|rule_drop-me" "$T/before.txt") "$T/after.txt" | head -5)"
ok "restart: the removed zone's 5 and the removed rule's configs deleted, the other 11 untouched"

# the deletions were remembered too: a further restart sends nothing
finish_bridge
: >"$T/live.txt"
start_bridge "$T/cfg.yaml"
wait_cycles 3
quiet_for 2 "a restart without change sends no config"
[ "$(sub_lines "$T/live.txt" | wc -l)" -eq 0 ] || fail "a restart without change sent: $(sub_lines "$T/live.txt" | head -3)"
n_is 11 || fail "$(n_retained) retained configs, want 11"
ok "restart without change: no config sent"

# discovery turned off while stopped: the bridge's entities go away
finish_bridge
write_cfg false plain # a homeassistant: target needs it on
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for n_is 0 || fail "homeassistant off: $(n_retained) configs still retained"
ok "homeassistant turned off while stopped: every config deleted"
finish_bridge
