# A write that fails (a full disk, simulated by an SQLite trigger on the outbox that a flag
# in a table of its own switches on and off from another process) loses nothing: the poll is
# logged, done again once writes work, and the alert, which has a cooldown, still goes out
# (the failed poll's cooldown was rolled back with it).
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
Z=$(sim_zone_id 0)
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: cool
    when: {kind: event}
    cooldown: 5m
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
db() { sqlite3 -cmd "PRAGMA busy_timeout = 5000" "$T/state/state.db" "$1" >/dev/null; }
# a first run creates the database; the trigger goes in while the bridge is stopped
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for grep -q 'zones: polling' "$T/bridge.log" || fail "the bridge did not start"
stop_bridge
db "CREATE TABLE e2e_flag (key TEXT PRIMARY KEY, value INTEGER); INSERT INTO e2e_flag VALUES ('e2e_full', 0); CREATE TRIGGER e2e_full BEFORE INSERT ON outbox
	WHEN (SELECT value FROM e2e_flag WHERE key = 'e2e_full') = 1
	BEGIN SELECT RAISE(ABORT, 'simulated disk full'); END;" || fail "unable to add the trigger"
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
wait_log 'zones: polling' || fail "the bridge did not start again"
wait_cycles 1 # polls are being saved before the disk fills
db "UPDATE e2e_flag SET value = 1 WHERE key = 'e2e_full'" || fail "unable to fill the disk"
E=$(sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"intrusion\"]}")
WAIT=10 wait_for grep -q "unable to save this poll" "$T/bridge.log" || fail "the failed save was not logged"
# the poll is done again and fails again while the disk stays full
failed_twice() { [ "$(count_lines "$T/bridge.log" "unable to save this poll")" -ge 2 ]; }
WAIT=10 wait_for failed_twice || fail "the failed poll was not done again"
[ "$(sub_count)" -eq 0 ] || fail "a message went out while writes failed"
db "UPDATE e2e_flag SET value = 0 WHERE key = 'e2e_full'" || fail "unable to free the disk"
sub_wait 1 20 || fail "event $E never delivered after writes came back: $(grep -c 'unable to save' "$T/bridge.log") failed saves"
[ "$(sub_payloads e2e/all | jq -r .source_id)" = "$E" ] || fail "wrong message: $(cat "$T/sub.txt")"
bridge_alive || fail "the bridge died"
ok "a poll that could not be saved was done again and delivered ($(grep -c 'unable to save' "$T/bridge.log") failed saves logged)"
