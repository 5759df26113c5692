# The test brokers lib.sh starts lose nothing a scenario counts on, whoever runs the tests
# (root included): a durable session on a persistent broker keeps what is published while
# its subscriber is away, across a broker restart.
. "$(dirname "$0")/lib.sh"
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
