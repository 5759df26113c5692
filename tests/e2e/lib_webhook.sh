# Webhook scenario helpers (sourced after lib.sh): a real receiver and a bridge config.

# start_receiver ARGS...: sets RECV_PORT; requests are logged to $T/recv.jsonl
start_receiver() {
	rm -f "$T/recv.port"
	"$TOOLS/receiver" --port "${RECV_FIXED_PORT:-0}" --port-file "$T/recv.port" \
		--log "$T/recv.jsonl" "$@" >"$T/recv.out" 2>&1 &
	RECV_PID=$!
	PIDS="$PIDS $RECV_PID"
	wait_for test -s "$T/recv.port" || fail "receiver did not start"
	RECV_PORT=$(cat "$T/recv.port")
}
stop_receiver() { kill "$RECV_PID" 2>/dev/null; wait "$RECV_PID" 2>/dev/null; }
recv_script() { curl -sf -X POST -d "$1" "http://127.0.0.1:$RECV_PORT/_recv/script" >/dev/null; }
recv_count() { [ -f "$T/recv.jsonl" ] && wc -l <"$T/recv.jsonl" || echo 0; }

# first_zone: id of the simulator's first zone
first_zone() {
	curl -sf -H 'Authorization: Bearer sim-static-token' "$SIM_URL/api/v3p/zones" | jq -r '.data[0].id'
}
zone_n() {
	curl -sf -H 'Authorization: Bearer sim-static-token' "$SIM_URL/api/v3p/zones" | jq -r ".data[$1].id"
}

# inject_event ZONE FLAGS_JSON [SEVERITY]: prints the new event's id
inject_event() {
	sim_post /_sim/events "{\"zone_id\":\"$1\",\"flags\":$2,\"severity\":\"${3:-high}\"}" | jq -r '.data.id'
}

# verify_sig SECRET LINE: checks webhook-signature of a logged request with the secret
verify_sig() {
	key=$(printf '%s' "${1#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
	id=$(printf '%s' "$2" | jq -r '.headers["webhook-id"]')
	ts=$(printf '%s' "$2" | jq -r '.headers["webhook-timestamp"]')
	want=$( { printf '%s.%s.' "$id" "$ts"; printf '%s' "$2" | jq -j '.body'; } |
		openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
	for s in $(printf '%s' "$2" | jq -r '.headers["webhook-signature"]'); do
		[ "$s" = "v1,$want" ] && return 0
	done
	return 1
}
recv_at_least() { [ "$(recv_count)" -ge "$1" ]; }
