# Downtime longer than the lookback: on restart the gap is caught up in bounded windows
# (catchup_window), oldest first; what they find is marked backfill, a rule with max_age
# skips the stale ones, and live events afterwards are not backfill.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
Z=$(sim_zone_id 0)
cfg_head "$T/cfg.yaml" "catchup_window: 2s"
sed -i 's/lookback: 5m/lookback: 2s/' "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    when: {kind: event}
    to: [{mqtt: home, topic: "e2e/all"}]
  - name: fresh
    when: {kind: event, max_age: 4s}
    to: [{mqtt: home, topic: "e2e/fresh"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
inject() { sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}" || fail "inject"; }
field() { sub_payloads "e2e/$1" | jq -r "select(.source_id == \"$2\") | $3"; }
E0=$(inject)
sub_wait 2 10 || fail "nothing delivered before the downtime"
[ "$(field all "$E0" .backfill)" = false ] || fail "a live event is marked backfill"
finish_bridge

# 8 s down (lookback 2 s): one event a second
DOWN=""
for i in 1 2 3 4 5 6 7 8; do DOWN="$DOWN $(inject)"; quiet_for 1 "the bridge is down: event $i of 8, one a second"; done
sim_reqs_clear
start_bridge "$T/cfg.yaml"
got_all() { for e in $DOWN; do sub_payloads e2e/all | grep -q "\"source_id\":\"$e\"" || return 1; done; }
WAIT=15 wait_for got_all || fail "not every event of the downtime arrived: $(sub_count) messages"
# the four oldest started 5 s or more before the restart: outside the lookback, so found
# while catching up (backfill), and older than max_age 4s, so the fresh rule skips them all
set -- $DOWN
for e in "$1" "$2" "$3" "$4"; do
	[ "$(field all "$e" .backfill)" = true ] || fail "event $e of the gap is not backfill"
	[ -z "$(field fresh "$e" .id)" ] || fail "max_age 4s let the backfilled event $e (5 s old or more) through"
done
# in order, and the gap was read in windows of at most lookback + catchup_window, oldest first
want=$(printf '%s\n' $DOWN)
gotord=$(sub_payloads e2e/all | jq -r .source_id | awk '!seen[$0]++' | grep -v "^$E0\$")
[ "$gotord" = "$want" ] || fail "catch-up order differs: $gotord"
wins=$(sim_reqs | jq -r '.requests[] | select(.path == "/api/v3p/events") | .query' |
	grep 'from=' | sed 's/.*from=\([^&]*\)&to=\([^&]*\).*/\1 \2/; s/%20/ /g; s/%3A/:/g' |
	while read -r fd ft fz td tt tz; do
		echo "$(date -u -d "$fd $ft" +%s%3N) $(date -u -d "$td $tt" +%s%3N)"
	done)
n=$(printf '%s\n' "$wins" | wc -l)
[ "$n" -ge 3 ] || fail "the 8 s gap was read in $n window(s): $wins"
printf '%s\n' "$wins" | awk 'NR > 1 && $2 < prev { bad = 1 } { prev = $2 } END { exit bad }' ||
	fail "windows not oldest first: $wins"
printf '%s\n' "$wins" | awk '$2 - $1 > 4000 + 50 { bad = 1 } END { exit bad }' ||
	fail "a window longer than lookback + catchup_window: $wins"
echo "windows: $(printf '%s\n' "$wins" | awk '{ x = ""; if (NR > 1) x = ", to +" ($2 - p) " ms"; printf "[%.1f s%s] ", ($2 - $1) / 1000, x; p = $2 }')"
ok "8 s gap caught up in $n bounded windows, oldest first, in order, the stale ones marked backfill and skipped by max_age"

E9=$(inject)
live() { [ -n "$(field all "$E9" .id)" ]; }
WAIT=10 wait_for live || fail "a live event after the catch-up did not arrive"
[ "$(field all "$E9" .backfill)" = false ] || fail "a live event after the catch-up is marked backfill"
[ -n "$(field fresh "$E9" .id)" ] || fail "a live event did not pass max_age"
ok "live events after the catch-up are not backfill"
finish_bridge
