# SIGTERM (and SIGINT) stops the daemon within 5 s with exit 0, also while an API request hangs or the
# broker is down with a delivery waiting, and
# leaves `offline` retained on <prefix>/bridge/status after a clean MQTT disconnect (not
# the last will); `online` is retained while it runs.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
cfg_head "$T/cfg.yaml"
sed -i 's/timeout: 3s/timeout: 30s/' "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    when: {kind: any}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
status() { mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t tb/bridge/status -C 1 -W 3 2>/dev/null; }
is_status() { [ "$(status)" = "$1" ]; }

# stop_timed: SIGTERM, then waits for the exit; sets RC and MS
stop_timed() { # [SIGNAL]
	t0=$(date +%s%N)
	kill "-${1:-TERM}" "$BRIDGE_PID"
	WAIT=10 wait_for bridge_gone
	MS=$((($(date +%s%N) - t0) / 1000000))
	bridge_alive && fail "still running ${MS} ms after SIGTERM"
	wait "$BRIDGE_PID"
	RC=$?
	forget_pid "$BRIDGE_PID"
}

round() { # NAME
	start_bridge "$T/cfg.yaml"
	WAIT=10 wait_for is_status online || fail "$1: 'online' not retained on tb/bridge/status"
	[ "$1" = hung ] && {
		# the first request to take a fault takes the one-off fault (the simulator then holds
		# one fault): from then on the poller is inside a request that takes 7 s
		sim_fault '{"delay_ms": 7000, "count": 1}'
		sim_fault '{"delay_ms": 7000, "count": 50}'
		one_fault() { [ "$(sim_get /_sim/stats | jq .faults)" = 1 ]; }
		wait_for one_fault || fail "$1: no API request took the fault"
	}
	[ "$1" = broker-down ] && {
		stop_mosquitto
		forget_pid "$MQTT_PID"
		sim_event "{\"zone_id\":\"$(sim_zone_id 0)\"}" >/dev/null # a delivery waiting
		WAIT=10 wait_for grep -q "mqtt 'home'.*lost" "$T/bridge.log" || fail "$1: loss not noticed"
		wait_cycles 2 # the event is in the outbox
	}
	if [ "$1" = sigint ]; then stop_timed INT; else stop_timed; fi
	[ "$MS" -le 5000 ] || fail "$1: stopped after $MS ms (limit 5000)"
	[ "$RC" -eq 0 ] || fail "$1: exit status $RC: $(tail -5 "$T/bridge.log")"
	grep -q 'AddressSanitizer\|LeakSanitizer\|runtime error:' "$T/bridge.log" &&
		fail "$1: sanitizer report: $(grep -m 3 'Sanitizer\|runtime error:\|#[0-9] ' "$T/bridge.log")"
	[ "$1" = broker-down ] && {
		start_mosquitto "$MQTT_PORT"
		ok "$1: stopped in $MS ms, exit 0"
		return
	}
	is_status offline || fail "$1: status is '$(status)', want retained 'offline'"
	grep -q 'stopped' "$T/bridge.log" || fail "$1: no 'stopped' in the log"
	ok "$1: stopped in $MS ms, exit 0, 'offline' retained"
}
round idle
# clean stop: the broker saw a DISCONNECT, so `offline` came from the bridge, not the will
grep -q "Client tb-e2e-$$ disconnected" "$T/mosquitto.log" ||
	fail "no clean disconnect in the broker log: $(tail -5 "$T/mosquitto.log")"
grep -q "Client tb-e2e-$$ closed its connection\|Socket error on client tb-e2e-$$" "$T/mosquitto.log" &&
	fail "the broker saw the connection drop, not a clean disconnect"
: >"$T/bridge.log"
round sigint
grep -q 'SIGINT: stopping' "$T/bridge.log" || fail "sigint: not logged as SIGINT"
: >"$T/bridge.log"
round broker-down
: >"$T/bridge.log"
round hung
