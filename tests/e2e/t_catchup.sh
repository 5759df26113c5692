# A twelve-hour catch-up (the simulator's backlog, the cursor moved 12 h back while the bridge
# is down) is visible and safe: progress at info, events older than poll.catchup_max_age (1h
# by default) recorded but not delivered, one summary line counting them; with
# catchup_max_age: 0 every event of the gap is delivered.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1 --backlog 600 --backlog-span 12h --seed 7
start_sub 'e2e/#'

# run STATE_DIR MAX_AGE: a first start (cursor at now), down, the cursor 12 h back, restart;
# waits for the catch-up's summary. Leaves the log of the second start in $T/run2.log.
run() {
	cfg_head "$T/cfg.yaml" "catchup_window: 1h${2:+, catchup_max_age: $2}"
	sed -i "s|^state_dir: .*|state_dir: $1|" "$T/cfg.yaml"
	cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
	: >"$T/bridge.log"
	start_bridge "$T/cfg.yaml"
	cursors() { [ "$(sqlite3 "$1/state.db" 'SELECT count(*) FROM cursors' 2>/dev/null)" -ge 2 ]; }
	WAIT=15 wait_for cursors "$1" || fail "no cursors after the first start: $(tail -3 "$T/bridge.log")"
	finish_bridge
	sqlite3 "$1/state.db" "UPDATE cursors SET until_ms = until_ms - 12 * 3600 * 1000" ||
		fail "unable to move the cursors back"
	before=$(sub_count)
	: >"$T/bridge.log"
	start_bridge "$T/cfg.yaml"
	WAIT=60 wait_for grep -q "caught up in" "$T/bridge.log" ||
		fail "no catch-up summary: $(tail -5 "$T/bridge.log")"
	finish_bridge
	cp "$T/bridge.log" "$T/run2.log"
	NEW=$(($(sub_count) - before))
}

# the default: 1h
run "$T/s1" ""
grep -q "zone '[^']*': catching up on about 1[12]h[0-9m ]* missed; events older than 1h are recorded, not delivered (poll.catchup_max_age)" "$T/run2.log" ||
	fail "no start line: $(grep -m 3 catching "$T/run2.log")"
grep -q "zone '[^']*': catching up: [0-9]* windows\? left, [0-9]* events so far ([0-9]* held back for age), about [0-9hms ]* to go" "$T/run2.log" ||
	fail "no progress line: $(grep -m 3 catching "$T/run2.log")"
[ "$(grep -c "caught up in" "$T/run2.log")" = 1 ] || fail "not one summary line: $(grep "caught up" "$T/run2.log")"
line=$(grep "caught up in" "$T/run2.log")
found=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9]*\) events, \([0-9]*\) of them older than 1h recorded but not delivered (poll.catchup_max_age)$/\1/p')
held=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9]*\) events, \([0-9]*\) of them older than 1h recorded but not delivered (poll.catchup_max_age)$/\2/p')
[ -n "$found" ] && [ -n "$held" ] || fail "summary line: $line"
[ "$held" -gt 400 ] || fail "only $held of $found held back: $line"
[ "$found" -gt "$held" ] || fail "nothing of the last hour delivered: $line"
[ "$NEW" = $((found - held)) ] || fail "$NEW delivered, want $found - $held: $line"
grep -q " warn: " "$T/run2.log" && fail "warnings during the catch-up: $(grep " warn: " "$T/run2.log")"
ok "12 h catch-up: $found found, $held older than 1h recorded not delivered, $NEW delivered"

# the held ones are recorded: restarting delivers nothing more
before=$(sub_count)
: >"$T/bridge.log"
start_bridge "$T/cfg.yaml"
wait_cycles 3
finish_bridge
[ "$(sub_count)" = "$before" ] || fail "a restart delivered $(($(sub_count) - before)) held events"

# 0: deliver all
run "$T/s2" 0
grep -q "catching up on about 1[12]h[0-9m ]* missed; every event is delivered (poll.catchup_max_age: 0)" "$T/run2.log" ||
	fail "no start line with 0: $(grep -m 3 catching "$T/run2.log")"
line=$(grep "caught up in" "$T/run2.log")
found=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9]*\) events$/\1/p')
[ -n "$found" ] || fail "summary line with 0: $line"
[ "$NEW" = "$found" ] && [ "$found" -gt 400 ] || fail "catchup_max_age 0: $NEW delivered of $found: $line"
ok "catchup_max_age 0: all $found events of the gap delivered"
