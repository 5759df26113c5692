# The container files without a Docker daemon: the entry point says what to mount when no
# configuration is there and otherwise runs the command with it; the Dockerfile copies every
# source folder the build needs and bakes in no simulator config; the compose file's bridge
# config passes check with the compose environment; `docker compose config` (or
# docker-compose) validates the compose file when either is installed.
. "$(dirname "$0")/lib.sh"
EP=$ROOT/contrib/docker-entrypoint.sh
export PATH="$BUILD:$PATH"

TETHER_BRIDGE_CONFIG=$T/none.yaml sh "$EP" >"$T/out" 2>"$T/err" && fail "ran without a configuration"
[ -s "$T/out" ] && fail "the entry point wrote to stdout: $(cat "$T/out")"
grep -q "no configuration at $T/none.yaml" "$T/err" || fail "no clear message: $(cat "$T/err")"
grep -q -- "-v .*tether-bridge.yaml:$T/none.yaml:ro" "$T/err" || fail "does not say what to mount: $(cat "$T/err")"
grep -q 'share/doc/tether-bridge/service.yaml' "$T/err" || fail "no pointer to the starting point"
ok "no config: $(head -n 1 "$T/err")"
TETHER_BRIDGE_CONFIG=$T/none.yaml sh "$EP" --version | grep -q '^tether-bridge ' || fail "--version needs a config"

# the compose setup: config/service.yaml with the environment docker-compose.yml gives it
cp "$ROOT/config/service.yaml" "$T/cfg.yaml"
out=$(TETHER_BRIDGE_CONFIG=$T/cfg.yaml TETHER_TOKEN=tok MQTT_HOST=mosquitto \
	METRICS_LISTEN=0.0.0.0:9464 STATE_DIRECTORY=$T/state sh "$EP" check 2>&1) ||
	fail "check through the entry point: $out"
case "$out" in "$T/cfg.yaml: ok"*) ;; *) fail "check printed '$out'" ;; esac
out=$(TETHER_BRIDGE_CONFIG=$T/cfg.yaml STATE_DIRECTORY=$T/state sh "$EP" check 2>&1) &&
	fail "the compose config passed without TETHER_TOKEN"
echo "$out" | grep -q "TETHER_TOKEN" || fail "missing token not named: $out"
ok "entry point runs check on the mounted config"

D=$ROOT/Dockerfile
for dir in $(sed -n 's/^LIB_SRC *:= .*wildcard \([^)]*\)).*/\1/p' "$ROOT/Makefile" | grep -o '[a-z]*/\*\.c' | cut -d/ -f1) bridge man contrib; do
	grep -q "^COPY $dir " "$D" || fail "the Dockerfile does not copy $dir/"
done
grep -q 'example.yaml\|demo.yaml' "$D" && fail "the image bakes in a simulator config"
grep -q '^ENTRYPOINT \["docker-entrypoint"\]' "$D" || fail "the image does not use the entry point"
ok "Dockerfile: every source folder, no simulator config"

if docker compose version >/dev/null 2>&1; then DC="docker compose"
elif command -v docker-compose >/dev/null 2>&1; then DC=docker-compose
else DC=""; fi
if [ -n "$DC" ]; then
	TETHER_TOKEN=tok $DC -f "$ROOT/contrib/docker-compose.yml" config >"$T/compose.out" 2>&1 ||
		fail "$DC config: $(cat "$T/compose.out")"
	grep -q 'MQTT_HOST: mosquitto' "$T/compose.out" || fail "compose: no MQTT_HOST"
	env -u TETHER_TOKEN $DC -f "$ROOT/contrib/docker-compose.yml" config >"$T/compose.out" 2>&1 &&
		fail "compose config passed without TETHER_TOKEN"
	ok "$DC config validates contrib/docker-compose.yml"
else
	echo "note: neither 'docker compose' nor docker-compose is installed; the compose file was not validated"
fi
