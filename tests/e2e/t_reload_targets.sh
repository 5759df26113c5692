# A reload that adds a broker or webhook (which only a restart would deliver to) or moves
# state_dir is refused with the reason; the running configuration keeps delivering.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
Z=$(sim_zone_id 0)
cfg_head "$T/cfg.yaml"
cp "$T/cfg.yaml" "$T/head.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - {name: all, when: {kind: event}, to: [{mqtt: home, topic: "e2e/all"}]}
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for grep -q "zones: polling" "$T/bridge.log" || fail "the bridge did not start"
{ cat "$T/head.yaml"; cat <<CFG
webhooks:
  fresh: {url: "http://127.0.0.1:9/hook"}
rules:
  - {name: all, when: {kind: event}, to: [{mqtt: home, topic: "e2e/all"}, {webhook: fresh}]}
CFG
} >"$T/cfg.yaml"
kill -HUP "$BRIDGE_PID"
WAIT=10 wait_for grep -q "webhook 'fresh' is new; adding a webhook needs a restart" "$T/bridge.log" ||
	fail "a reload adding a webhook was not refused"
sim_event "{\"zone_id\":\"$Z\",\"flags\":[\"motion\"]}" >/dev/null
sub_wait 1 10 || fail "the running configuration stopped delivering"
bridge_alive || fail "the bridge died"
ok "reload adding a webhook refused: $(grep -m1 "is new" "$T/bridge.log" | sed 's/.*error: //')"
