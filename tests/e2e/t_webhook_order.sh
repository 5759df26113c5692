# order: zone keeps each zone's messages in order behind a slow first one; order: none lets
# a zone's later messages arrive while one of its messages is still being retried; a 429
# with Retry-After pauses the whole webhook whatever the order. Relations, not timings:
# the receiver's log order is the arrival order.
. "$(dirname "$0")/lib.sh"
start_sim --zones 3
# a 0 in the script hangs (logged at once with status 0) past the bridge's 1 s timeout
start_receiver --hang-ms 4000 --retry-after 2
# records SINCE: the receiver's log lines after the first SINCE, as "source_id status"
records() { tail -n "+$(($1 + 1))" "$T/recv.jsonl" | jq -r '"\(.body | fromjson | .source_id) \(.status)"'; }
# run NAME ORDER CONCURRENCY ZONE: a bridge that sends the events of ZONE to the receiver
run() {
	cat >"$T/$1.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state-$1
webhooks:
  hook: {url: "http://127.0.0.1:$RECV_PORT/hook", timeout: 1s, order: $2, concurrency: $3}
rules:
  - name: all
    when: {kind: event, zones: ["$4"]}
    to: [{webhook: hook}]
CFG
	start_bridge "$T/$1.yaml"
}

# 1. order: zone. The zone's first message hangs: the others wait for its retry's 200.
Z=$(zone_n 0)
E1=$(inject_event "$Z" '["motion"]')
E2=$(inject_event "$Z" '["motion"]')
E3=$(inject_event "$Z" '["motion"]')
recv_script 0,200
base=$(recv_count)
run zone zone 4 "$Z"
WAIT=30 wait_for recv_at_least $((base + 4)) || fail "only $(($(recv_count) - base)) requests"
quiet_for 1 "a fifth request would come now"
finish_bridge
got=$(records "$base" | tr '\n' ' ')
[ "$got" = "$E1 0 $E1 200 $E2 200 $E3 200 " ] || fail "order zone: arrivals were: $got"
ok "order zone: the zone's later messages waited for the first one's retry ($got)"

# 2. order: none. One message hangs and is retried; the zone's others arrive before its retry.
Z=$(zone_n 1)
F1=$(inject_event "$Z" '["motion"]')
F2=$(inject_event "$Z" '["motion"]')
F3=$(inject_event "$Z" '["motion"]')
recv_script 0,200
base=$(recv_count)
run none none 4 "$Z"
WAIT=30 wait_for recv_at_least $((base + 4)) || fail "only $(($(recv_count) - base)) requests"
quiet_for 1 "a fifth request would come now"
finish_bridge
records "$base" >"$T/none.txt"
got=$(tr '\n' ' ' <"$T/none.txt")
[ "$(wc -l <"$T/none.txt")" -eq 4 ] || fail "order none: expected 4 requests: $got"
M=$(awk '$2 == 0 { print $1 }' "$T/none.txt")
[ -n "$M" ] || fail "order none: no request hung: $got"
# the hung message's retry is the last arrival: the other two came while it was retried
[ "$(tail -n 1 "$T/none.txt")" = "$M 200" ] || fail "order none: arrivals were: $got"
for e in "$F1" "$F2" "$F3"; do
	[ "$(grep -c "^$e 200$" "$T/none.txt")" -eq 1 ] || fail "order none: $e not delivered once: $got"
done
ok "order none: the zone's other messages arrived while $M was retried ($got)"

# 3. order: none, one at a time: a 429 with Retry-After pauses the webhook, so the next
# message does not overtake the 429'd one's retry.
Z=$(zone_n 2)
G1=$(inject_event "$Z" '["motion"]')
G2=$(inject_event "$Z" '["motion"]')
recv_script 429,200
base=$(recv_count)
run pause none 1 "$Z"
WAIT=30 wait_for recv_at_least $((base + 3)) || fail "only $(($(recv_count) - base)) requests"
quiet_for 1 "a fourth request would come now"
finish_bridge
got=$(records "$base" | tr '\n' ' ')
[ "$got" = "$G1 429 $G1 200 $G2 200 " ] || fail "order none after a 429: arrivals were: $got"
ok "a 429 paused the whole webhook until its retry ($got)"
