# Home Assistant discovery across a restart: what was published is remembered in state.db,
# so a zone no longer polled and a rule removed while the bridge was stopped get their
# configs deleted (empty retained payloads) at the next start, and every other config is
# sent again unchanged (a start is a connection: a broker that lost its retained messages
# gets them back); discovery turned off while stopped deletes every config the bridge had
# published.
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
live_n() { sub_lines "$T/live.txt" | wc -l; }
live_has() { [ "$(live_n)" -ge "$1" ]; }
WAIT=15 wait_for live_has 17 || fail "restart sent $(live_n) configs, want 6 deletions and 11 kept"
wait_cycles 2
quiet_for 2 "nothing more than the deletions and the kept configs may come"
sub_lines "$T/live.txt" >"$T/live-only.txt"
[ "$(wc -l <"$T/live-only.txt")" -eq 17 ] || fail "restart sent $(wc -l <"$T/live-only.txt") configs, want 17: $(cat "$T/live-only.txt")"
# an empty payload: mosquitto_sub -v prints the topic alone, or "(null)" after it
grep "zone_$Z1\|rule_drop-me" "$T/live-only.txt" | grep -v '^[^ ]*\( (null)\)\?$' && fail "a deletion with a payload"
[ "$(grep -c "zone_$Z1\|rule_drop-me" "$T/live-only.txt")" -eq 6 ] || fail "want 6 deletions: $(cat "$T/live-only.txt")"
# the kept ones are sent again byte for byte as they were
grep -v "zone_$Z1\|rule_drop-me" "$T/live-only.txt" | sort | cmp -s - <(grep -v "zone_$Z1\|rule_drop-me" "$T/before.txt") ||
	fail "the kept configs were sent changed: $(grep -v "zone_$Z1\|rule_drop-me" "$T/live-only.txt" | sort | diff - <(grep -v "zone_$Z1\|rule_drop-me" "$T/before.txt") | head -5)"
retained_cfgs | sort >"$T/after.txt"
grep -v "zone_$Z1\|rule_drop-me" "$T/before.txt" | cmp -s - "$T/after.txt" ||
	fail "the kept configs changed: $(diff <(grep -v "zone_$Z1\|rule_drop-me" "$T/before.txt") "$T/after.txt" | head -5)"
ok "restart: the removed zone's 5 and the removed rule's configs deleted, the other 11 sent again unchanged"

# the deletions were remembered too: a further restart sends the 11 again, deletes nothing
finish_bridge
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -R -v -t 'homeassistant/#' >"$T/live2.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_probe 'homeassistant/#' "$T/live2.txt"
live_n() { sub_lines "$T/live2.txt" | wc -l; }
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for live_has 11 || fail "restart without change sent $(live_n) configs, want 11"
wait_cycles 3
quiet_for 2 "a restart without change sends the kept configs once, no deletion"
[ "$(live_n)" -eq 11 ] || fail "a restart without change sent $(live_n) configs, want 11: $(sub_lines "$T/live2.txt" | head -3)"
sub_lines "$T/live2.txt" | grep '^[^ ]*\( (null)\)\?$' && fail "a restart without change deleted a config"
n_is 11 || fail "$(n_retained) retained configs, want 11"
ok "restart without change: the 11 configs sent again, none deleted"

# discovery turned off while stopped: the bridge's entities go away
finish_bridge
write_cfg false plain # a homeassistant: target needs it on
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for n_is 0 || fail "homeassistant off: $(n_retained) configs still retained"
ok "homeassistant turned off while stopped: every config deleted"
finish_bridge
