# kill -9 at random moments while the bridge drains a 2,000-event backlog (and new data
# generated between rounds), restarting it each time: in the end every event and plate
# read the simulator holds was published at least once, nothing unexpected was, and every
# repeat is the same message (same id, same topic and payload).
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 3 --backlog 2000 --backlog-span 4m
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    when: {kind: any}
    to: [{mqtt: home, topic: "e2e/{{kind}}/{{zone.id}}"}]
CFG
start_sub 'e2e/#'
ROUNDS=${ROUNDS:-6}
sub_grown() { [ "$(sub_count)" -gt "$1" ]; }
notes=""
for r in $(seq 1 $ROUNDS); do
	before=$(sub_count)
	start_bridge "$T/cfg.yaml"
	if [ $((r % 2)) -eq 1 ]; then
		# 30-600 ms: before the first commit, during the drain or in between polls
		ms=$((30 + RANDOM % 570))
		quiet_for "$(printf '0.%03d' "$ms")" "round $r: the moment of the kill"
	else
		# as soon as the drain has visibly started (or 3 s have passed), plus 0-90 ms
		t0=$(date +%s%N)
		STEP_MS=10 WAIT=3 wait_for sub_grown "$before"
		ms=$((($(date +%s%N) - t0) / 1000000))
		quiet_for "0.0$((RANDOM % 10))" "round $r: the moment of the kill, once the drain started"
	fi
	bridge_alive || fail "round $r: the bridge exited by itself: $(tail -5 "$T/bridge.log")"
	stop_bridge KILL
	notes="$notes ${ms}ms:$before->$(sub_count)"
	# more data for the next round to find while it still drains the old
	sim_post /_sim/generate '{"events": 600, "plates": 60}' >/dev/null || fail "generate"
done
echo "round: ms after start:received before->after kill:$notes"
start_bridge "$T/cfg.yaml"

# expected: every event and plate read the simulator holds, as v1 ids
: >"$T/want"
for z in $(sim_get /_sim/zones | jq -r '.zones[].id'); do
	curl -sf -H 'Authorization: Bearer sim-static-token' "$SIM_URL/api/v3p/events?zone_id=$z" |
		jq -r '.data[] | "event:\(.id):\(.attributes.updated_at)"' >>"$T/want" || fail "sim events"
	curl -sf -H 'Authorization: Bearer sim-static-token' "$SIM_URL/api/v3p/lpr?zone_id=$z" |
		jq -r '.data[] | "plate:\(.id):\(.attributes.updated_at)"' >>"$T/want" || fail "sim lpr"
done
sort -u -o "$T/want" "$T/want"
WANT=$(wc -l <"$T/want")
STATS=$(sim_get /_sim/stats)
[ "$WANT" -eq $(($(echo "$STATS" | jq '.events + .plates'))) ] ||
	fail "expected set ($WANT) differs from the simulator's counts: $STATS"
distinct() { sub_ids | sort -u | wc -l; }
has_all() { [ "$(distinct)" -ge "$WANT" ]; }
wait_progress distinct has_all || {
	sub_ids | sort -u | comm -23 "$T/want" - | head -5
	fail "only $(distinct) of $WANT distinct messages arrived"
}
wait_cycles 2 # nothing more may come
bridge_alive || fail "the bridge exited"
sub_ids | sort -u >"$T/got"
missing=$(comm -23 "$T/want" "$T/got" | wc -l)
extra=$(comm -13 "$T/want" "$T/got" | wc -l)
[ "$missing" -eq 0 ] || fail "$missing messages never arrived, e.g. $(comm -23 "$T/want" "$T/got" | head -3)"
[ "$extra" -eq 0 ] || fail "$extra unexpected ids, e.g. $(comm -13 "$T/want" "$T/got" | head -3)"
# a repeat carries the same id: every (topic, payload) line is unique per id
total=$(sub_count)
lines_per_id=$(sub_lines | sort -u | sed 's/^[^{]*//' | jq -r .id | sort | uniq -d | wc -l)
[ "$lines_per_id" -eq 0 ] || fail "$lines_per_id ids were sent with different payloads or topics"
ok "$WANT distinct messages after $ROUNDS kill -9 rounds, $((total - WANT)) duplicates, all identical repeats"
finish_bridge
