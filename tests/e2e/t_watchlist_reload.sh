# A watchlist file replaced on disk (as a cron job would: write and rename) is picked up
# without a signal; a broken replacement is rejected with its errors and the old list stays.
. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 1
Z=$(sim_zone_id 0)
printf '# stolen vehicles\nAB12CDE,grey van,GBR\n' >"$T/stolen.txt"
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
watchlists:
  stolen: {file: $T/stolen.txt}
rules:
  - name: stolen
    when: {kind: plate, watchlists: [stolen]}
    to: [{mqtt: home, topic: "e2e/stolen/{{plate.label}}"}]
CFG
start_sub 'e2e/#'
start_bridge "$T/cfg.yaml"
WAIT=10 wait_for grep -q "zones: polling" "$T/bridge.log" || fail "the bridge did not start"
sim_plate "{\"zone_id\":\"$Z\",\"plate_number\":\"NEW 1234\",\"country\":\"GBR\"}" >/dev/null
wait_cycles 2 # the plate has been polled and ruled on
[ "$(sub_count)" -eq 0 ] || fail "a plate not on the list alerted: $(cat "$T/sub.txt")"

printf 'AB12CDE,grey van,GBR\nNEW1234,blue car\n' >"$T/stolen.new"
mv "$T/stolen.new" "$T/stolen.txt"
WAIT=10 wait_for grep -q "reload: new configuration accepted" "$T/bridge.log" || fail "file change not picked up"
sim_plate "{\"zone_id\":\"$Z\",\"plate_number\":\"NEW1234\",\"country\":\"GBR\"}" >/dev/null
sub_wait 1 10 || fail "the plate added to the file did not alert"
grep -q "^e2e/stolen/blue car " "$T/sub.txt" || fail "wrong topic: $(cat "$T/sub.txt")"
ok "a replaced watchlist file is used without a signal"

printf 'AB12CDE,grey van,GBR\n/[unclosed/\n' >"$T/stolen.new"
mv "$T/stolen.new" "$T/stolen.txt"
WAIT=10 wait_for grep -q "reload rejected: .*stolen.txt:2" "$T/bridge.log" || fail "the broken file was not reported"
sim_plate "{\"zone_id\":\"$Z\",\"plate_number\":\"NEW1234\",\"country\":\"GBR\"}" >/dev/null
sub_wait 2 10 || fail "the old list stopped working after a rejected reload"
bridge_alive || fail "the bridge died"
ok "a broken watchlist file is rejected and the running list stays: $(grep -m1 'reload rejected: .*stolen' "$T/bridge.log" | sed 's/.*error: //')"
