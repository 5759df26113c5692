# Only a broker with commands: true acts on commands: with commands: false on the only
# broker, a perspective command is ignored (no switch, no result, no subscription).
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim
ctl_cfg "$T/cfg.yaml" 5m false
start_sub 'tb/#'
start_bridge "$T/cfg.yaml"
WAIT=15 wait_for sh -c "grep -q 'connected to' '$T/bridge.log'" || fail "no connection"
quiet_for 1 "a commands subscription would be in place by now"
cmd perspective Entrances
cmd mode away
quiet_for 3 "no switch, result or state topic may come"
bridge_alive || fail "the bridge died"
[ "$(switch_count)" -eq 0 ] || fail "switched: $(switches)"
[ "$(result_count)" -eq 0 ] || fail "answered: $(results)"
grep -q 'taking commands' "$T/bridge.log" && fail "subscribed to commands"
grep -q "^tb/mode " "$T/sub.txt" && fail "published state: $(grep '^tb/mode' "$T/sub.txt")"
ok "commands ignored: no switch, no result, no state topics"
finish_bridge
