# Home Assistant discovery over time: Home Assistant's birth message brings every config
# again; a renamed zone keeps its unique_ids under the new name and nothing else is sent; a
# zone no longer polled and a rule removed by a reload get their configs deleted; the
# availability topic says offline after kill -9 (last will) and after a clean stop.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
Z0=$(sim_zone_id 0); Z1=$(sim_zone_id 1)
[ -n "$Z0" ] && [ "$Z0" != null ] || fail "no zones from the simulator"
write_cfg() { # RULES...
	cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token, timeout: 3s}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
mqtt:
  home: {url: "mqtt://127.0.0.1:$MQTT_PORT", topic_prefix: tb, client_id: tb-e2e, homeassistant: true}
rules:
CFG
	for r in "$@"; do
		printf '  - {name: %s, when: {flags_any: [intrusion]}, to: [{homeassistant: home}]}\n' "$r" >>"$T/cfg.yaml"
	done
}
write_cfg keep-me drop-me
"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null || fail "config rejected: $("$BRIDGE" check -c "$T/cfg.yaml")"
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t 'homeassistant/+/+/+/config' >"$T/disc.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_probe 'homeassistant/+/+/+/config' "$T/disc.txt"
start_bridge "$T/cfg.yaml"
n_cfg() { sub_lines "$T/disc.txt" | wc -l; }
at_least() { [ "$(n_cfg)" -ge "$1" ]; }
# retained configs now, as Home Assistant would find them on connecting
retained() { mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -v -t 'homeassistant/+/+/+/config' -W 1 2>/dev/null; }
# bridge 5 + 2 zones of 5 + 2 rules
WAIT=15 wait_for at_least 17 || fail "only $(n_cfg) configs: $(tail -5 "$T/bridge.log")"
quiet_for 2 "no config beyond the expected ones"
[ "$(n_cfg)" -eq 17 ] || fail "expected 17 configs at start, got $(n_cfg)"
ok "start: 17 configs"

# birth: every config again
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t homeassistant/status -m online
WAIT=15 wait_for at_least 34 || fail "birth: only $(n_cfg) configs"
quiet_for 2 "no config beyond the expected ones"
[ "$(n_cfg)" -eq 34 ] || fail "birth: expected 34, got $(n_cfg)"
ok "birth message: all 17 configs sent again"

# rename: the zone's 5 configs again, same unique_ids, new device name; nothing else
det="homeassistant/event/tb-e2e/zone_${Z0}_detection/config"
uid_before=$(grep "^$det " "$T/disc.txt" | tail -1 | sed 's/^[^ ]* //' | jq -r .unique_id)
sim_patch "/_sim/zones/$Z0" '{"name":"Front gate"}' >/dev/null || fail "rename"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t tb/cmd/refresh -m ''
WAIT=15 wait_for at_least 39 || fail "rename: only $(n_cfg) configs"
quiet_for 2 "no config beyond the expected ones"
[ "$(n_cfg)" -eq 39 ] || fail "rename: expected 5 new configs, got $(($(n_cfg) - 34))"
grep "^$det " "$T/disc.txt" | tail -1 | sed 's/^[^ ]* //' |
	jq -e --arg u "$uid_before" '.unique_id == $u and .device.name == "Front gate"' >/dev/null ||
	fail "rename: $(grep "^$det " "$T/disc.txt" | tail -1)"
ok "rename: same unique_id ($uid_before), new name, only that zone's 5 configs"

# removal: the zone's configs are deleted (empty retained payloads)
curl -sf -X DELETE "$SIM_URL/_sim/zones/$Z1" || fail "delete zone"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t tb/cmd/refresh -m ''
gone_z1() { ! retained | grep -q "zone_$Z1"; }
WAIT=15 wait_for gone_z1 || fail "removed zone still has configs: $(retained | grep "zone_$Z1" | head -2)"
retained | grep -q "zone_$Z0" || fail "the other zone lost its configs"
ok "removal: the removed zone's configs deleted, the other zone's kept"

# reload without a rule: its config deleted
write_cfg keep-me
kill -HUP "$BRIDGE_PID"
gone_rule() { ! retained | grep -q "rule_drop-me"; }
WAIT=15 wait_for gone_rule || fail "removed rule still has a config"
retained | grep -q "rule_keep-me" || fail "the kept rule lost its config"
ok "reload: the removed rule's config deleted, the kept one's stays"

# availability: online, then offline by the last will after kill -9, then a clean stop
status() { mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t tb/bridge/status -C 1 -W 2 2>/dev/null; }
[ "$(status)" = online ] || fail "availability: $(status)"
stop_bridge KILL
is_offline() { [ "$(status)" = offline ]; }
WAIT=15 wait_for is_offline || fail "no last will after kill -9: $(status)"
ok "kill -9: availability offline (last will)"
start_bridge "$T/cfg.yaml"
is_online() { [ "$(status)" = online ]; }
WAIT=15 wait_for is_online || fail "not online after restart"
finish_bridge
[ "$(status)" = offline ] || fail "clean stop: $(status)"
ok "restart: online; clean stop: offline"
