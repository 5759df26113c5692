# metrics.listen as `check` accepts it: "[::1]:PORT" and "localhost:PORT" are bound by
# `run`. A client opening many idle connections (a slowloris) gets 4 per address, the rest
# are closed at once, and /healthz answers again as soon as it lets go.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
MPORT=$(freeport)
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
metrics: {listen: "[::1]:$MPORT"}
rules:
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
"$BRIDGE" check -c "$T/cfg.yaml" >/dev/null || fail "check refused [::1]:PORT"
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for curl -sfg "http://[::1]:$MPORT/healthz" ||
	fail "/healthz on [::1] never answered 200: $(tail -3 "$T/bridge.log")"
ok "run binds [::1]:PORT"

# ten idle connections from ::1: four are held, six closed by the server at once
fds=""
for i in 1 2 3 4 5 6 7 8 9 10; do
	exec {fd}<>"/dev/tcp/::1/$MPORT" || fail "connect $i"
	fds="$fds $fd"
done
# the server closes the six over the limit: wait until it has (a held one stays silent)
six_closed() {
	local c=0
	for fd in $fds; do
		read -r -t 0.05 -u "$fd" _
		[ $? -gt 128 ] || c=$((c + 1))
	done
	[ $c -ge 6 ]
}
WAIT=5 wait_for six_closed
closed=0 held=0
for fd in $fds; do
	read -r -t 0.2 -u "$fd" _
	rc=$?
	if [ $rc -gt 128 ]; then held=$((held + 1)); else closed=$((closed + 1)); fi
done
[ $held -eq 4 ] && [ $closed -eq 6 ] || fail "idle connections: $held held, $closed closed (want 4 and 6)"
for fd in $fds; do exec {fd}>&-; done
# the server notices the closed connections in its own time
WAIT=5 wait_for curl -sfg "http://[::1]:$MPORT/healthz" ||
	fail "/healthz after the idle connections closed: $(curl -sg -o /dev/null -w '%{http_code}' "http://[::1]:$MPORT/healthz")"
ok "idle connections: 4 held, 6 refused; /healthz answers once they are gone"
# libmicrohttpd's complaint reaches our log as one warning, never raw on stderr
grep -q "warn: metrics: libmicrohttpd: Server reached per-IP connection limit\|warn: metrics: libmicrohttpd: .*connection limit" "$T/bridge.log" ||
	fail "no libmicrohttpd warning in the log: $(grep -i limit "$T/bridge.log")"
[ "$(grep -c "libmicrohttpd" "$T/bridge.log")" = 1 ] ||
	fail "libmicrohttpd messages not rate-limited: $(grep -c libmicrohttpd "$T/bridge.log")"
raw=$(grep -v '^[0-9-]*T[0-9:.]*Z [a-z]*: \|^{' "$T/bridge.log")
[ -z "$raw" ] || fail "raw library output in the log: $raw"
ok "libmicrohttpd's messages go through the log, once a minute at most"
stop_bridge

sed -i "s/listen: \"\[::1\]:$MPORT\"/listen: \"localhost:$MPORT\"/" "$T/cfg.yaml"
grep -q "localhost:$MPORT" "$T/cfg.yaml" || fail "config not rewritten"
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for curl -sf "http://localhost:$MPORT/healthz" ||
	fail "/healthz on localhost never answered 200: $(tail -3 "$T/bridge.log")"
ok "run binds localhost:PORT"
finish_bridge
