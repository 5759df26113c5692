# One daemon per state_dir: a second `run` on the same state_dir exits 1 at once, naming the
# PID that holds state_dir/lock; another state_dir is not affected; the lock goes with its
# process (a clean stop or kill -9), and the stale file left behind does not block the next.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    when: {kind: any}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
started() { grep -q 'rules loaded' "$T/bridge.log"; }
start_bridge "$T/cfg.yaml"
FIRST=$BRIDGE_PID
wait_for started || fail "the first daemon did not start: $(tail -5 "$T/bridge.log")"
wait_for grep -q "^$FIRST\$" "$T/state/lock" || fail "no pid in the lock file: $(cat "$T/state/lock")"

timeout 20 "$BRIDGE" run -c "$T/cfg.yaml" >"$T/second.out" 2>"$T/second.log"
rc=$?
[ $rc -eq 1 ] || fail "the second daemon exited $rc, want 1: $(tail -3 "$T/second.log")"
grep -q "state_dir '$T/state' is in use by another tether-bridge (pid $FIRST)" "$T/second.log" ||
	fail "no clear message: $(tail -3 "$T/second.log")"
[ -s "$T/second.out" ] && fail "the second daemon wrote to stdout"
bridge_alive || fail "the first daemon died"
ok "second daemon refused: $(grep 'in use' "$T/second.log" | sed 's/^.*error: //')"

# another state_dir runs alongside
sed "s|^state_dir: .*|state_dir: $T/other|; s|client_id: tb-e2e-$$|client_id: tb-e2e-other-$$|" \
	"$T/cfg.yaml" >"$T/other.yaml"
"$BRIDGE" run -c "$T/other.yaml" >"$T/other.log" 2>&1 &
OTHER=$!
PIDS="$PIDS $OTHER"
WAIT=10 wait_for grep -q 'rules loaded' "$T/other.log" || fail "the other state_dir did not start"
WAIT=10 wait_for grep -q 'zones: polling' "$T/other.log" || fail "the other state_dir does not poll: $(tail -3 "$T/other.log")"
kill -0 "$OTHER" 2>/dev/null || fail "a daemon on another state_dir stopped: $(tail -3 "$T/other.log")"
kill -TERM "$OTHER"
wait "$OTHER" || fail "the other daemon exited $?"
forget_pid "$OTHER"
ok "another state_dir is not affected"

# a clean stop releases the lock (the file stays, with the old pid)
finish_bridge
: >"$T/bridge.log"
start_bridge "$T/cfg.yaml"
wait_for started || fail "no restart after a clean stop: $(tail -3 "$T/bridge.log")"
wait_log 'zones: polling' || fail "the restarted daemon does not poll: $(tail -3 "$T/bridge.log")"
bridge_alive || fail "the restarted daemon stopped: $(tail -3 "$T/bridge.log")"
grep -q "in use" "$T/bridge.log" && fail "the stale lock file blocked a restart"
ok "restart after a clean stop"

# kill -9: the kernel drops the lock with the process
stop_bridge KILL
: >"$T/bridge.log"
start_bridge "$T/cfg.yaml"
wait_for started || fail "no restart after kill -9: $(tail -3 "$T/bridge.log")"
wait_log 'zones: polling' || fail "the daemon after kill -9 does not poll: $(tail -3 "$T/bridge.log")"
bridge_alive || fail "the daemon after kill -9 stopped: $(tail -3 "$T/bridge.log")"
wait_for grep -q "^$BRIDGE_PID\$" "$T/state/lock" || fail "the lock file does not name the new daemon"
finish_bridge
ok "restart after kill -9"
