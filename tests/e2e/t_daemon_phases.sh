# Event phases through the running daemon: a late arrival inside the lookback is delivered;
# an event injected open is `new`, patched with a new flag (or a higher severity) `update`,
# patched complete `complete`; an open event older than the window is found by `at` and
# followed until it completes; re-polled and unchanged revisions (or ones changing nothing that matters)
# are not sent again. Run under both readings tether-sim serves: `to` bounding the start
# with open events' ends_at null, and `to` bounding the end with open ends_at = now.
. "$(dirname "$0")/lib.sh"
start_mosquitto

phases() { # READING SIM_ARGS...
READING=$1
shift
start_sim --zones 2 "$@"
Z0=$(sim_zone_id 0)
Z1=$(sim_zone_id 1)
cfg_head "$T/cfg.yaml"
sed -i "s|state_dir: .*|state_dir: $T/state-$READING|" "$T/cfg.yaml"
: >"$T/bridge.log"
MPORT=$(freeport)
cat >>"$T/cfg.yaml" <<CFG
metrics: {listen: "127.0.0.1:$MPORT"}
rules:
  - name: ph-new
    when: {kind: event, phase: [new]}
    to: [{mqtt: home, topic: "e2e/new"}]
  - name: ph-update
    when: {kind: event, phase: [update]}
    to: [{mqtt: home, topic: "e2e/update"}]
  - name: ph-complete
    when: {kind: event, phase: [complete]}
    to: [{mqtt: home, topic: "e2e/complete"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for grep -q 'zones: polling' "$T/bridge.log" || fail "the bridge did not poll"
wait_cycles 1 # the cursors have moved past the late event's start

on() { sub_payloads "e2e/$1" | jq -c "select(.source_id == \"$2\")"; }
n_on() { sub_payloads "e2e/$1" | wc -l; }
field() { printf '%s' "$1" | jq -r "$2"; }

# a late arrival: started 3 minutes ago (inside lookback 5m), reaches the API now
LATE=$(sim_event "{\"zone_id\":\"$Z0\",\"flags\":[\"intrusion\"],\"starts_at\":\"$(iso_ago 180)\",\"ends_at\":\"$(iso_ago 170)\"}") || fail "inject"
# open now, and open since 8 minutes (older than the window: only ?at= finds it)
OPEN=$(sim_event "{\"zone_id\":\"$Z0\",\"flags\":[\"motion\"],\"complete\":false}") || fail "inject"
OLD=$(sim_event "{\"zone_id\":\"$Z1\",\"flags\":[\"motion\"],\"complete\":false,\"starts_at\":\"$(iso_ago 480)\"}") || fail "inject"
sub_wait 3 10 || fail "only $(sub_count) of 3 new messages: $(cat "$T/sub.txt")"
for e in "$LATE" "$OPEN" "$OLD"; do
	m=$(on new "$e")
	[ -n "$m" ] || fail "no new message for $e: $(cat "$T/sub.txt")"
	[ "$(field "$m" .phase)" = new ] || fail "$e: phase $(field "$m" .phase)"
done
[ "$(field "$(on new "$LATE")" .complete)" = true ] || fail "late event: complete"
[ "$(field "$(on new "$OPEN")" .complete)" = false ] || fail "open event: complete"
[ "$(field "$(on new "$OLD")" .complete)" = false ] || fail "old open event: complete"
ok "$READING: late arrival inside lookback, open event and old open event are new"

# a new flag: update (still open)
R=$(sim_patch "/_sim/events/$OPEN" '{"flags":["motion","intrusion"]}') || fail "patch"
UPD=$(printf '%s' "$R" | jq -r .data.attributes.updated_at)
sub_wait 4 10 || fail "no update message: $(cat "$T/sub.txt")"
m=$(on update "$OPEN")
[ -n "$m" ] || fail "no message on e2e/update: $(cat "$T/sub.txt")"
[ "$(field "$m" .phase)" = update ] || fail "update: phase $(field "$m" .phase)"
[ "$(field "$m" .id)" = "event:$OPEN:$UPD" ] || fail "update: id $(field "$m" .id), want revision $UPD"
[ "$(field "$m" '.flags|join(",")')" = motion,intrusion ] || fail "update: flags"
[ "$(field "$m" .complete)" = false ] || fail "update: complete"
[ "$(field "$m" .rule)" = ph-update ] || fail "update: rule"
ok "$READING: a new flag on an open event is an update with the new revision's id"

# a higher severity on the old open event: update too
sim_patch "/_sim/events/$OLD" '{"severity":"critical"}' >/dev/null || fail "patch"
sub_wait 5 10 || fail "no update for a severity change: $(cat "$T/sub.txt")"
m=$(on update "$OLD")
[ "$(field "$m" .phase)/$(field "$m" .severity)" = update/critical ] ||
	fail "severity change: got '$m'"
ok "$READING: a severity change on an open event is an update"

# complete: both open events; the old one is only found by following it with ?at=
sim_patch "/_sim/events/$OPEN" '{"complete":true}' >/dev/null || fail "patch"
sim_patch "/_sim/events/$OLD" '{"complete":true}' >/dev/null || fail "patch"
sub_wait 7 10 || fail "only $(sub_count) of 7 messages after completing: $(cat "$T/sub.txt")"
for e in "$OPEN" "$OLD"; do
	m=$(on complete "$e")
	[ -n "$m" ] || fail "no complete message for $e: $(cat "$T/sub.txt")"
	[ "$(field "$m" .phase)" = complete ] || fail "$e: phase"
	[ "$(field "$m" .complete)" = true ] || fail "$e: complete flag"
	[ "$(field "$m" .ended_at)" != null ] || fail "$e: ended_at"
done
ok "$READING: completing open events (one followed with ?at=) gives complete"

# a new revision changing nothing a consumer cares about, and plain re-polls: nothing more
sim_patch "/_sim/events/$LATE" '{"items_count":3}' >/dev/null || fail "patch"
wait_cycles 2
[ "$(sub_count)" -eq 7 ] || fail "expected 7 messages in all, got $(sub_count): $(cat "$T/sub.txt")"
[ "$(n_on new)" -eq 3 ] && [ "$(n_on update)" -eq 2 ] && [ "$(n_on complete)" -eq 2 ] ||
	fail "per phase: $(n_on new) new, $(n_on update) update, $(n_on complete) complete"
[ "$(sub_ids | sort -u | wc -l)" -eq 7 ] || fail "a revision was sent twice: $(sub_ids | sort | uniq -d)"
bridge_alive || fail "the bridge exited"
ok "$READING: unchanged and uninteresting revisions are not sent again"

# what a poll reads again: the complete revisions are skipped unread, and counted
unchanged() { curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "tether_bridge_unchanged_resources_total" { print $2 }'; }
u1=$(unchanged)
[ "${u1:-0}" -ge 2 ] || fail "unchanged resources counted: '$u1', want the complete events of the lookback read again"
wait_cycles 1
u2=$(unchanged)
[ "${u2:-0}" -ge $((u1 + 2)) ] || fail "unchanged resources: $u1 then $u2 a cycle later, want 2 more (LATE and OPEN)"
[ "$(sub_count)" -eq 7 ] || fail "a message after re-reads: $(sub_count) in all"
ok "$READING: complete revisions read again are skipped ($u1, then $u2 a cycle later)"
finish_bridge
stop_sub
kill "$SIM_PID"
wait "$SIM_PID" 2>/dev/null
forget_pid "$SIM_PID"
}

phases start-null --to-bounds start --open-ends-at null
phases end-now --to-bounds end --open-ends-at now
