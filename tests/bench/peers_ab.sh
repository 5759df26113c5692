#!/bin/bash
# peers_ab.sh BIN [SECONDS]: one binary on the run-peers.sh workload (../shared/bench-peers
# fake_api.py: 50 zones polled every second, 1,000-event pages, 32% matching), MQTT QoS 1
# to a local mosquitto, for quick before/after comparisons of two builds: delivered msg/s,
# CPU per message, every thread's share of a core and the peak RSS, over SECONDS (15) once
# the bridge has warmed up. VARIANT=full adds a webhook to nginx (format json,
# HOOK_CONCURRENCY, default 4); POLL_CONCURRENCY (8); ZONES (50: fewer, say 15, keep the
# host below saturation, where a CPU-per-message figure varies less). 127.0.0.1 only. Alternate the two
# binaries a few times: the machine is shared, one run says little.
set -u
BIN=$(readlink -f "${1:?usage: peers_ab.sh BIN [SECONDS]}")
SECS=${2:-15}
VARIANT=${VARIANT:-mqtt-only}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/bench/peers.sh"
PEERS=$(peers_find "$ROOT")
[ -n "$PEERS" ] || { echo "peers_ab: no fake_api.py (set BENCH_PEERS)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "peers_ab: $BIN is not an executable" >&2; exit 2; }
T=$(mktemp -d /tmp/tb-peers-ab.XXXXXX)
PIDS=""
# the last started first: mosquitto_sub, signalled once its broker is gone, can stay in its
# reconnect loop for good, and the wait below with it
cleanup() {
	local p rev=""
	for p in $PIDS; do rev="$p $rev"; done
	for p in $rev; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ "${KEEP:-0}" = 1 ]; then echo "peers_ab: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
freeport() { python3 "$PEERS/peers_stats.py" freeport; }
wait_file() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }
ticks() { awk '{ print $14 + $15 }' "$1/stat"; }

BROKER_PORT=$(freeport)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n' "$BROKER_PORT" \
	>"$T/mosquitto.conf"
mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
PIDS="$PIDS $!"
python3 "$PEERS/fake_api.py" --serve --page-size 1000 --zones "${ZONES:-50}" --shape doc \
	--port-file "$T/api.port" >"$T/api.log" 2>&1 &
PIDS="$PIDS $!"
wait_file "$T/api.port" || { echo "peers_ab: fake_api.py did not start" >&2; exit 1; }
API_PORT=$(cat "$T/api.port")
HOOK=""
if [ "$VARIANT" = full ]; then
	SINK_PORT=$(freeport)
	mkdir -p "$T/nginx"
	cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 8192; }
http {
    client_body_temp_path $T/nginx/cb; proxy_temp_path $T/nginx/pt; fastcgi_temp_path $T/nginx/ft;
    uwsgi_temp_path $T/nginx/ut; scgi_temp_path $T/nginx/st;
    log_format bench '\$msec \$status';
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$SINK_PORT;
        access_log $T/nginx/access.log bench buffer=64k flush=100ms;
        location / { return 204; }
    }
}
EOF
	nginx -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" >/dev/null 2>&1 &
	PIDS="$PIDS $!"
	HOOK=http://127.0.0.1:$SINK_PORT/hook
fi
PEERS_POLL_CONCURRENCY=${POLL_CONCURRENCY:-8} PEERS_HOOK_CONCURRENCY=${HOOK_CONCURRENCY:-4} \
	peers_config "$T/bridge.yaml" "$API_PORT" "$BROKER_PORT" "$T/state" tb-peers-ab info "$HOOK"
mosquitto_sub -h 127.0.0.1 -p "$BROKER_PORT" -q 1 -t 'tether/events/#' -F '%U' >"$T/sub.out" 2>/dev/null &
PIDS="$PIDS $!"
"$BIN" run -c "$T/bridge.yaml" >"$T/bridge.log" 2>&1 &
BR=$!
PIDS="$PIDS $BR"
sleep 3
curl -sf "http://127.0.0.1:$API_PORT/control/open" >/dev/null || { echo "peers_ab: gate" >&2; exit 1; }
sleep 3 # warm-up
kill -0 "$BR" 2>/dev/null || { echo "peers_ab: the bridge exited: $(tail -3 "$T/bridge.log")" >&2; exit 1; }
m0=$(wc -l <"$T/sub.out")
h0=$([ -f "$T/nginx/access.log" ] && wc -l <"$T/nginx/access.log" || echo 0)
c0=$(ticks "/proc/$BR")
f0=$(awk '{ print $10 }' "/proc/$BR/stat")
for t in /proc/"$BR"/task/*; do echo "${t##*/} $(ticks "$t")"; done >"$T/threads.0"
sleep "$SECS"
m1=$(wc -l <"$T/sub.out")
h1=$([ -f "$T/nginx/access.log" ] && wc -l <"$T/nginx/access.log" || echo 0)
c1=$(ticks "/proc/$BR")
f1=$(awk '{ print $10 }' "/proc/$BR/stat")
for t in /proc/"$BR"/task/*; do echo "${t##*/} $(ticks "$t")"; done >"$T/threads.1"
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$BR/status")
curl -sf "http://127.0.0.1:$API_PORT/control/close" >/dev/null
HZ=$(getconf CLK_TCK)
awk -v m=$((m1 - m0)) -v h=$((h1 - h0)) -v c=$((c1 - c0)) -v s="$SECS" -v hz="$HZ" -v hwm="$hwm" -v f=$((f1 - f0)) \
	-v v="$VARIANT" 'BEGIN {
	printf "peers_ab %s: %.0f msg/s", v, m / s
	if (v == "full") printf ", %.0f webhook posts/s (nginx log, flushed every 100 ms)", h / s
	printf ", CPU %.1f us per delivery, %.2f page faults per delivery, VmHWM %.1f MiB\n",
		(m + h) ? c / hz * 1e6 / (m + h) : 0, (m + h) ? f / (m + h) : 0, hwm / 1024
}'
join "$T/threads.0" "$T/threads.1" |
	awk -v s="$SECS" -v hz="$HZ" '{ printf "  thread %s: %.0f%% of a core\n", $1, ($3 - $2) / hz * 100 / s }'
grep -iE 'warn|error' "$T/bridge.log" | head -n 3 | sed 's/^/  bridge log: /'
