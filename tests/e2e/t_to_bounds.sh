# The docs do not say whether `to` bounds an event's start or its end, nor what ends_at an
# open event has: under every reading tether-sim can serve, every event is delivered, and an
# open event is followed until it completes.
. "$(dirname "$0")/lib.sh"
start_mosquitto
run_reading() { # TO_BOUNDS OPEN_ENDS_AT
	start_sim --zones 1 --to-bounds "$1" --open-ends-at "$2"
	Z=$(sim_zone_id 0)
	rm -rf "$T/state"
	cfg_head "$T/cfg.yaml"
	cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/$1/$2/{{phase}}"}]
CFG
	: >"$T/sub.txt"
	start_sub "e2e/$1/$2/#"
	start_bridge "$T/cfg.yaml"
	OPEN=$(sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"],\"complete\":false,\"ends_at\":null,\"starts_at\":\"$(iso_ago 30)\"}")
	DONE=$(sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"],\"starts_at\":\"$(iso_ago 20)\",\"ends_at\":\"$(iso_ago 10)\"}")
	sub_wait 2 15 || fail "$1/$2: only $(sub_count) of 2 new events: $(tail -3 "$T/bridge.log")"
	wait_cycles 2 # the open event stays open for a few cycles
	sim_patch "/_sim/events/$OPEN" "{\"complete\":true,\"ends_at\":\"$(iso_ago 0)\"}" >/dev/null || fail "patch"
	sub_wait 3 15 || fail "$1/$2: the open event's completion never came"
	[ "$(sub_payloads "e2e/$1/$2/complete" | jq -r .source_id)" = "$OPEN" ] || fail "$1/$2: complete for the wrong event"
	[ "$(sub_payloads "e2e/$1/$2/new" | jq -r .source_id | sort)" = "$(printf '%s\n%s\n' "$OPEN" "$DONE" | sort)" ] ||
		fail "$1/$2: new events: $(cat "$T/sub.txt")"
	ok "to bounds $1, open events end at $2: new, new, complete"
	stop_bridge
	kill "$SIM_PID" "$SUB_PID" 2>/dev/null
	wait "$SIM_PID" "$SUB_PID" 2>/dev/null
}
run_reading start null
run_reading end null
run_reading end start
run_reading end now
