# Control-room scenario helpers (sourced after lib.sh): a config with a commands broker and
# a control section, commands, results, and the simulator's record of wall switches.

# ctl_cfg FILE [MANUAL_HOLD] [BROKER_EXTRA]: cfg_head with commands: true on broker "home"
# (prefix tb) and a control section (modes home, away, night, disarmed; home Overview);
# rules are appended by the caller
ctl_cfg() {
	cfg_head "$1"
	sed -i "s|client_id: tb-e2e-\$\$}|client_id: tb-e2e-$$, commands: ${3:-true}}|; s|client_id: tb-e2e-$$}|client_id: tb-e2e-$$, commands: ${3:-true}}|" "$1"
	cat >>"$1" <<CFG
control:
  modes: [home, away, night, disarmed]
  home_perspective: Overview
  manual_hold: ${2:-5m}
CFG
}

# persp_id NAME: a perspective's id from the simulator's API
persp_id() {
	curl -sf -H 'Authorization: Bearer sim-static-token' "$SIM_URL/api/v3p/perspectives" |
		jq -r --arg n "$1" '.data[] | select(.attributes.name == $n) | .id'
}

# switches: the perspective id of every live_switch_preset the simulator served, in order
switches() {
	sim_get /_sim/requests |
		jq -r '.requests[] | select(.method == "POST" and (.path | endswith("/live_switch_preset"))) | .path' |
		sed 's|.*/perspectives/||; s|/live_switch_preset||'
}
switch_count() { switches | wc -l; }
switches_at_least() { [ "$(switch_count)" -ge "$1" ]; }

# cmd NAME PAYLOAD [mosquitto_pub ARGS...]: a command on tb/cmd/NAME
cmd() {
	local name=$1 payload=$2
	shift 2
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "tb/cmd/$name" -m "$payload" "$@" ||
		fail "unable to publish tb/cmd/$name"
}

# results: the payloads received on tb/cmd/result; result_n N: the Nth (1-based)
results() { sub_payloads tb/cmd/result; }
result_count() { results | wc -l; }
results_at_least() { [ "$(result_count)" -ge "$1" ]; }
result_n() { results | sed -n "${1}p"; }

# retained TOPIC: the retained payload of TOPIC now (a fresh subscriber, first message)
retained() {
	mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t "$1" -C 1 -W 3 --retained-only 2>/dev/null
}
# retained_is TOPIC VALUE: the retained payload of TOPIC is VALUE
retained_is() { [ "$(retained "$1")" = "$2" ]; }
