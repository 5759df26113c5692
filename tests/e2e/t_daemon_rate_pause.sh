# A 429 pauses every API request, including those queued behind it in the same batch: with
# concurrency 1 a zone's requests go out one after another, and the one after the 429 (the
# "open now" events request of the same zone) must wait for Retry-After like the others.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 3
cfg_head "$T/cfg.yaml" "concurrency: 1"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    when: {kind: any}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for grep -q 'zones: polling' "$T/bridge.log" || fail "the bridge did not start polling: $(tail -3 "$T/bridge.log")"
wait_cycles 1 # the fault lands in a cycle of its own

sim_reqs_clear
sim_fault '{"status": 429, "retry_after": "2", "count": 1, "path": "/api/v3p/events"}'
api_reqs() { sim_get /_sim/requests | jq '[.requests[] | select(.path | startswith("/api/v3p/"))]'; }
after_429() { api_reqs | jq -e '(map(.status) | index(429)) as $i | $i != null and $i + 1 < length' >/dev/null; }
WAIT=15 wait_for after_429 || fail "no API request after the 429: $(api_reqs | jq -c '.[-4:]')"
ms='(.at | capture("T(?<h>[0-9]+):(?<m>[0-9]+):(?<s>[0-9]+)(\\.(?<f>[0-9]+))?") |
	((.h | tonumber) * 3600000 + (.m | tonumber) * 60000 + (.s | tonumber) * 1000 +
	 ((.f // "0") + "00" | .[0:3] | tonumber)))'
gap=$(api_reqs | jq "(map(.status) | index(429)) as \$i | (.[\$i + 1] | $ms) - (.[\$i] | $ms)")
[ "$gap" -ge 1900 ] ||
	fail "the next API request came ${gap} ms after the 429 (Retry-After 2): $(api_reqs | jq -c '.[-5:] | map({path, status, at})')"
ok "no API request for ${gap} ms after a 429 with Retry-After 2 (concurrency 1, 3 zones)"

WAIT=5 wait_for grep -q "not sent: rate limited\|(rate)" "$T/bridge.log" || fail "the 429 was not logged"
bridge_alive || fail "the bridge exited"
finish_bridge
