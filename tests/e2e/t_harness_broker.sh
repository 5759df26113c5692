# The test brokers lib.sh starts lose nothing a scenario counts on, whoever runs the tests
# (root included): a subscriber that falls far behind still gets every QoS 1 message, and
# a durable session on a persistent broker keeps what is published while its subscriber is
# away, across a broker restart.
. "$(dirname "$0")/lib.sh"
N=1500 # more than mosquitto's default queue (1000) and in-flight window (20) per client
start_mosquitto
start_sub 'h/#'
# a subscriber starved of CPU, at its worst: it reads nothing while everything is published
kill -STOP "$SUB_PID"
seq 1 $N | mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t h/n -l || {
	kill -CONT "$SUB_PID"
	fail "unable to publish $N messages"
}
kill -CONT "$SUB_PID"
sub_wait $N 30 || fail "only $(sub_count) of $N messages reached a subscriber that fell behind"
[ "$(sub_payloads h/n | sort -un | wc -l)" -eq $N ] || fail "not every message arrived"
ok "a subscriber $N messages behind got every one"
stop_sub
stop_mosquitto
forget_pid "$MQTT_PID"

start_mosquitto_persist
start_sub_durable 'd/#' "$T/dur.txt"
stop_sub
stop_mosquitto # fails the scenario when the broker could not save
forget_pid "$MQTT_PID"
start_mosquitto_persist "$MQTT_PORT"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t d/x -m kept || fail "unable to publish"
start_sub_durable 'd/#' "$T/dur.txt"
WAIT=10 wait_for grep -qx 'd/x kept' "$T/dur.txt" ||
	fail "the durable session lost what was published while its subscriber was away: $(sub_lines "$T/dur.txt")"
ok "a durable session kept a message across a broker restart"
