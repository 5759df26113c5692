# Type=notify: with NOTIFY_SOCKET set (as systemd does), the daemon sends READY=1 once it
# runs, RELOADING=1 then READY=1 around a SIGHUP reload (also a rejected one), and
# STOPPING=1 on SIGTERM. Without NOTIFY_SOCKET nothing changes (every other scenario).
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
"$TOOLS/notify_recv" "$T/notify.sock" >"$T/notify.txt" 2>"$T/notify.log" &
PIDS="$PIDS $!"
wait_for test -S "$T/notify.sock" || fail "notify_recv did not start"
NOTIFY_SOCKET=$T/notify.sock start_bridge "$T/cfg.yaml"
got() { grep -c -- "^$1\$" "$T/notify.txt"; }
has() { [ "$(got "$1")" -ge "$2" ]; }
wait_for has READY=1 1 || fail "no READY=1: $(cat "$T/notify.txt"); $(tail -3 "$T/bridge.log")"
[ "$(head -n 1 "$T/notify.txt")" = READY=1 ] || fail "READY=1 is not the first: $(cat "$T/notify.txt")"
ok "READY=1 once running"

kill -HUP "$BRIDGE_PID"
wait_for has READY=1 2 || fail "no READY=1 after the reload: $(cat "$T/notify.txt")"
[ "$(sed -n 2,3p "$T/notify.txt" | tr '\n' ' ')" = "RELOADING=1 READY=1 " ] ||
	fail "reload notifications: $(cat "$T/notify.txt")"
# a rejected reload still ends with READY=1: the old configuration keeps running
echo "bogus: 1" >>"$T/cfg.yaml"
kill -HUP "$BRIDGE_PID"
wait_for has READY=1 3 || fail "no READY=1 after a rejected reload: $(cat "$T/notify.txt")"
grep -q 'reload rejected' "$T/bridge.log" || fail "the broken config was not rejected"
ok "RELOADING=1 / READY=1 around reloads"

finish_bridge
has STOPPING=1 1 || fail "no STOPPING=1: $(cat "$T/notify.txt")"
ok "STOPPING=1 on SIGTERM"

# the unit file: systemd-analyze verify says nothing (it exits 0 even on unknown keys, so its
# output is what counts), and the offline security rating stays below 2.0 ("OK")
if command -v systemd-analyze >/dev/null 2>&1; then
	sed "s|/usr/local/bin/tether-bridge|$BRIDGE|" "$ROOT/contrib/tether-bridge.service" \
		>"$T/tether-bridge.service"
	out=$(systemd-analyze verify --man=no "$T/tether-bridge.service" 2>&1) ||
		fail "systemd-analyze verify failed: $out"
	[ -z "$out" ] && ok "systemd-analyze verify: clean" || fail "systemd-analyze verify: $out"
	score=$(systemd-analyze security --offline=yes "$T/tether-bridge.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	[ -n "$score" ] || fail "no security rating"
	awk -v s="$score" 'BEGIN { exit !(s < 2.0) }' || fail "security exposure $score (want < 2.0)"
	ok "systemd-analyze security: exposure $score"
else
	echo "note: systemd-analyze is not installed; the unit file was not verified"
fi
