# A struggling receiver answering 503 with `Retry-After: 0`: the header may lengthen the
# backoff, never shorten it, so the attempts stay at backoff pace (1 s, 2 s, 4 s with
# jitter: at most 4 in the first 5 s) instead of a retry storm of hundreds a second.
. "$(dirname "$0")/lib.sh"
start_sim --zones 1
start_receiver --script 503 --retry-after 0
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "$SIM_URL", insecure: true, access_token: sim-static-token}
poll: {interval: 1s, lookback: 5m}
state_dir: $T/state
webhooks:
  hook: {url: "http://127.0.0.1:$RECV_PORT/hook"}
rules:
  - name: all
    when: {kind: event}
    to: [{webhook: hook}]
CFG
start_bridge "$T/cfg.yaml"
inject_event "$(first_zone)" '["motion"]' >/dev/null
WAIT=20 wait_for recv_at_least 1 || fail "the message never arrived"
quiet_for 5 "the attempts in the first 5 s of 503s are counted"
n=$(recv_count)
finish_bridge
[ "$n" -ge 2 ] || fail "the 503 was not retried ($n attempts)"
[ "$n" -le 4 ] || fail "$n attempts in 5 s: Retry-After: 0 shortened the backoff"
ok "Retry-After: 0 kept the backoff: $n attempts in 5 s"
