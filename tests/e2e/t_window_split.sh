# A window holding more than poll.max_window_events is asked again in smaller pieces of
# time, oldest first (its first answer stops at the body cap), and every event of it is
# delivered once; the cursor only moves with the last piece.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1 --backlog 3000 --backlog-span 4m --incomplete 0 --seed 7
cfg_head "$T/cfg.yaml" "max_window_events: 200, plates: false"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/all"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
sub_wait 3000 60 || fail "not every event of the window arrived: $(sub_count) of 3000"
quiet_for 1 "no duplicate arrives after the last event"
[ "$(sub_count)" -eq 3000 ] || fail "$(sub_count) messages for 3000 events"
[ "$(sub_payloads e2e/all | jq -r .source_id | sort -u | wc -l)" -eq 3000 ] ||
	fail "not 3000 distinct events"
ok "3000 events of one window delivered once each"

# the sim's request log: the first window [now - 5m, now] and then smaller ones
wins=$(sim_get /_sim/requests | jq -r '.requests[] | select(.path == "/api/v3p/events") | .query' |
	grep 'from=' | sed 's/.*from=\([^&]*\)&to=\([^&]*\).*/\1 \2/; s/%20/ /g; s/%3A/:/g' |
	while read -r fd ft fz td tt tz; do
		echo "$(date -u -d "$fd $ft" +%s%3N) $(date -u -d "$td $tt" +%s%3N)"
	done)
n=$(printf '%s\n' "$wins" | wc -l)
[ "$n" -ge 4 ] || fail "the window was asked in $n request(s): $wins"
printf '%s\n' "$wins" | awk 'NR == 1 { w = $2 - $1 } NR > 1 && $2 - $1 < w / 2 + 1000 { small++ }
	END { exit small < 2 }' || fail "no smaller pieces were asked: $wins"
ok "asked in $n requests, pieces of $(printf '%s\n' "$wins" | awk 'NR > 1 { printf "%.0fs ", ($2 - $1) / 1000 }')"
