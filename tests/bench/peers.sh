# Sourced by run.sh and peers_ab.sh: what both need of the run-peers.sh workload of
# ../shared/bench-peers (fake_api.py: 50 zones polled every second, 1,000-event pages, 323
# of them matching two rules). Defines functions only.

# peers_find ROOT: prints the folder holding fake_api.py: $BENCH_PEERS, else the one next to
# the checkout ROOT or next to its parent; nothing when there is none (and a warning when
# BENCH_PEERS names a folder without it).
peers_find() {
	local d
	if [ -n "${BENCH_PEERS:-}" ]; then
		if [ -f "$BENCH_PEERS/fake_api.py" ]; then
			echo "$BENCH_PEERS"
		else
			echo "bench: BENCH_PEERS=$BENCH_PEERS holds no fake_api.py" >&2
		fi
		return
	fi
	for d in "$1/../shared/bench-peers" "$1/../../shared/bench-peers"; do
		if [ -f "$d/fake_api.py" ]; then
			echo "$d"
			return
		fi
	done
}

# peers_config FILE API_PORT MQTT_PORT STATE_DIR CLIENT_ID LOG_LEVEL [HOOK_URL]: writes the
# bridge's config for the workload: run-peers.sh's two rules, each to the MQTT broker and,
# with HOOK_URL, to a json webhook too. PEERS_POLL_CONCURRENCY (8) and
# PEERS_HOOK_CONCURRENCY (the bridge's default when unset) tune it.
peers_config() {
	local to='      - {mqtt: bench, topic: "tether/events/{{zone.id}}"}' hooks=""
	if [ -n "${7:-}" ]; then
		hooks="webhooks:
  sink: {url: \"$7\", format: json${PEERS_HOOK_CONCURRENCY:+, concurrency: $PEERS_HOOK_CONCURRENCY}}"
		to="$to
      - {webhook: sink}"
	fi
	cat >"$1" <<CFG
tether: {base_url: "http://127.0.0.1:$2", access_token: bench-static-token, insecure: true}
poll: {interval: 1s, lookback: 2m, zones: all, events: true, plates: true, concurrency: ${PEERS_POLL_CONCURRENCY:-8}}
state_dir: $4
log: {level: $6}
mqtt:
  bench: {url: "mqtt://127.0.0.1:$3", client_id: $5, qos: 1}
$hooks
rules:
  - name: intrusion-or-tripwire
    when: {kind: event, flags_any: [intrusion, tripwire]}
    to:
$to
  - name: severity-high
    when: {kind: event, flags_none: [intrusion, tripwire], severity: [high]}
    to:
$to
CFG
}
