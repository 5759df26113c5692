# The next batch of zones goes to the API while the last one is committed: with the state
# database's write lock held by another process, the commit of zone A (batch 1) waits and
# then fails, and zone B's window (batch 2) is asked in the meantime, before A's failure is
# logged (one zone per batch). Fetching and committing in turn would ask B only after it.
# Once the lock goes, nothing is lost.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 2
A=$(sim_zone_id 0)
B=$(sim_zone_id 1)
AN=$(sim_zone_name 0)
cfg_head "$T/cfg.yaml" "concurrency: 1"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
wait_log 'zones: polling' || fail "the bridge did not start"
wait_cycles 2
# the write lock, held by another process until it is killed
python3 -c '
import signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
signal.pause()
' "$T/state/state.db" >"$T/lock.log" 2>&1 &
LOCK_PID=$!
PIDS="$PIDS $LOCK_PID"
WAIT=15 wait_for grep -q locked "$T/lock.log" || fail "unable to take the write lock: $(cat "$T/lock.log")"
log_mark
EA=$(sim_event "{\"zone_id\":\"$A\"}")
EB=$(sim_event "{\"zone_id\":\"$B\"}")
wait_log "zone '$AN': unable to save this poll" 30 || fail "zone A's commit did not fail under the lock"
# the second of A's failure (log lines start "2026-12-06T11:22:25.123Z"); of the windows asked
# before that second (the request log is in arrival order), those of B after A's last
TF=$(log_since | grep -m1 "zone '$AN': unable to save this poll" | cut -c1-19)
N=$(sim_reqs | jq --arg a "$A" --arg b "$B" --arg tf "$TF" '
	[.requests[] | select(.path == "/api/v3p/events" and (.query | test("(^|&)from=")))
	 | select(.at[0:19] < $tf)] as $w
	| ([range($w | length) | select($w[.].query | test("zone_id=" + $a))] | last) as $ia
	| [$w[$ia + 1:][] | select(.query | test("zone_id=" + $b))] | length') || fail "unable to read the simulator's request log"
[ "$N" -ge 1 ] || fail "zone B was asked only after zone A's commit ended (A failed at $TF): $(sim_reqs | jq -c '[.requests[] | select(.path == "/api/v3p/events") | [.at, .query[0:40]]] | .[-8:]')"
kill "$LOCK_PID"
wait "$LOCK_PID" 2>/dev/null
forget_pid "$LOCK_PID"
sub_wait 2 30 || fail "the events were not delivered once the lock went: $(tail -3 "$T/bridge.log")"
for e in "$EA" "$EB"; do
	sub_payloads e2e/all | jq -r .source_id | grep -qx "$e" || fail "event $e lost"
done
bridge_alive || fail "the bridge died"
ok "zone B was asked while zone A's commit waited for the lock ($N window(s)); nothing lost"
