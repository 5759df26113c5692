# A webhook alone drains a 3,000-event backlog to a receiver on the same host: when every
# post started in a turn of the delivery loop is answered before the loop waits (a local
# receiver often answers that fast), the loop must start the next ones at once, not sleep
# until its next tick. Nothing else (no broker, no new events) wakes the loop here, so a
# loop that slept would deliver a few posts a second and miss the deadline by far.
. "$(dirname "$0")/lib.sh"
start_sim --zones 4 --backlog 3000 --backlog-span 4m --incomplete 0 --seed 11
start_receiver
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
webhooks:
  hook: {url: "http://127.0.0.1:$RECV_PORT/hook", concurrency: 8}
rules:
  - name: all
    when: {kind: event}
    to: [{webhook: hook}]
CFG
start_bridge "$T/cfg.yaml"
WAIT=90 wait_for recv_at_least 3000 ||
	fail "only $(recv_count) of 3000 posts in 90 s: the loop waited between posts"
ok "3000 posts"
