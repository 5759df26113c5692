# Home Assistant discovery turned on, moved and turned off by SIGHUP, without a restart:
# the reload subscribes to Home Assistant's birth topic and the refresh button on the live
# connection (and unsubscribes what is no longer wanted), and queues the configs; a birth
# message then sends them all again and the refresh button re-reads the zones.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
write_cfg() { # HOMEASSISTANT
	cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token, timeout: 3s}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
log: {level: debug}
mqtt:
  home: {url: "mqtt://127.0.0.1:$MQTT_PORT", topic_prefix: tb, client_id: tb-e2e, homeassistant: $1}
rules:
  - {name: plain, when: {flags_any: [intrusion]}, to: [{mqtt: home, topic: x}]}
CFG
	[ "$1" = false ] || printf '  - {name: ha-rule, when: {flags_any: [face]}, to: [{homeassistant: home}]}\n' >>"$T/cfg.yaml"
	"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null || fail "config rejected: $("$BRIDGE" check -c "$T/cfg.yaml")"
}
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t 'homeassistant/#' -t 'ha2/#' >"$T/disc.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_probe 'homeassistant/#' "$T/disc.txt"
sub_probe 'ha2/#' "$T/disc.txt"
# configs published (not deletions) under PREFIX
n_cfg() { sub_lines "$T/disc.txt" | grep -c "^$1/[^ ]*/config {" || true; }
at_least() { [ "$(n_cfg "$1")" -ge "$2" ]; }
retained_cfgs() { mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -v -t "$1/+/+/+/config" -W 1 2>/dev/null | wc -l; }
retained_n() { [ "$(retained_cfgs "$1")" -eq "$2" ]; }
zone_reads() { sim_get /_sim/requests | jq '[.requests[] | select(.path == "/api/v3p/zones")] | length'; }
more_reads() { [ "$(zone_reads)" -gt "$1" ]; }
birth() { mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t "$1/status" -m online; }

write_cfg false
start_bridge "$T/cfg.yaml"
wait_cycles 2
[ "$(n_cfg homeassistant)" -eq 0 ] || fail "configs published with homeassistant off"
birth homeassistant
quiet_for 2 "homeassistant off: a birth message brings nothing"
[ "$(n_cfg homeassistant)" -eq 0 ] || fail "a birth message brought configs with homeassistant off"
ok "homeassistant off: nothing published"

# on by reload: configs queued, then the birth topic and refresh button work
write_cfg true
log_mark
kill -HUP "$BRIDGE_PID"
# bridge 5 + 1 zone of 5 + 1 rule
WAIT=15 wait_for at_least homeassistant 11 || fail "reload: only $(n_cfg homeassistant) configs: $(log_since | tail -5)"
wait_log "subscribed to 'homeassistant/status'" 15 || fail "reload did not subscribe to the birth topic: $(log_since | grep -i 'mqtt\|home' | tail -5)"
wait_log "subscribed to 'tb/cmd/refresh'" 15 || fail "reload did not subscribe to the refresh button"
quiet_for 2 "the configs are sent once"
[ "$(n_cfg homeassistant)" -eq 11 ] || fail "reload: $(n_cfg homeassistant) configs, want 11"
ok "reload turning homeassistant on: 11 configs, subscribed"
birth homeassistant
WAIT=15 wait_for at_least homeassistant 22 || fail "birth after reload: only $(n_cfg homeassistant) configs"
ok "birth message after the reload: every config sent again"
wait_cycles 2
before=$(zone_reads)
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t tb/cmd/refresh -m '{}'
WAIT=10 wait_for more_reads "$before" || fail "the refresh button did not re-read the zones"
ok "refresh button after the reload: zones read again"

# the prefix moves: old configs deleted, new ones published, the birth topic follows
sed -i 's/homeassistant: true/homeassistant: {discovery_prefix: ha2}/' "$T/cfg.yaml"
log_mark
kill -HUP "$BRIDGE_PID"
WAIT=15 wait_for retained_n ha2 11 || fail "new prefix: $(retained_cfgs ha2) configs retained under ha2"
WAIT=15 wait_for retained_n homeassistant 0 || fail "new prefix: $(retained_cfgs homeassistant) configs left under homeassistant"
wait_log "subscribed to 'ha2/status'" 15 || fail "reload did not subscribe to ha2/status"
quiet_for 2 "the moved configs are sent once"
n_ha=$(n_cfg homeassistant)
n_ha2=$(n_cfg ha2)
birth homeassistant
quiet_for 2 "the old birth topic is no longer listened to"
[ "$(n_cfg ha2)" -eq "$n_ha2" ] && [ "$(n_cfg homeassistant)" -eq "$n_ha" ] ||
	fail "a birth on the old prefix brought configs"
birth ha2
WAIT=15 wait_for at_least ha2 $((n_ha2 + 11)) || fail "birth on ha2: only $(($(n_cfg ha2) - n_ha2)) configs"
ok "discovery_prefix moved by reload: configs moved, birth followed"

# off by reload: every config deleted, nothing listened to any more
write_cfg false
log_mark
kill -HUP "$BRIDGE_PID"
WAIT=15 wait_for retained_n ha2 0 || fail "off: $(retained_cfgs ha2) configs still retained"
wait_log "Home Assistant discovery off" 5 || fail "reload did not log discovery off"
wait_cycles 2
n_ha2=$(n_cfg ha2)
before=$(zone_reads)
birth ha2
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t tb/cmd/refresh -m '{}'
quiet_for 2 "neither the birth topic nor the refresh button is listened to"
[ "$(n_cfg ha2)" -eq "$n_ha2" ] || fail "a birth message brought configs after discovery was turned off"
log_since | grep -q "refresh requested" && fail "the refresh button still listened to"
ok "homeassistant off by reload: configs deleted, unsubscribed"
finish_bridge
