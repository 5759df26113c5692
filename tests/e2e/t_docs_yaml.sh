# The configurations users copy are real. config/example.yaml ships no working secret: it
# names ${WEBHOOK_SECRET}, `check` refuses it without the variable and accepts it with one.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
SECRET=whsec_$(head -c 32 /dev/urandom | base64 -w0)

grep -nE 'whsec_[A-Za-z0-9+/=]{8,}' config/example.yaml && fail "config/example.yaml holds a secret"
out=$(env -u WEBHOOK_SECRET TETHER_BRIDGE_STATE_DIR=$T/state "$BRIDGE" check -c config/example.yaml 2>&1) &&
	fail "config/example.yaml passes check without WEBHOOK_SECRET: $out"
case "$out" in *"'WEBHOOK_SECRET' is not set"*) ;; *) fail "no word on WEBHOOK_SECRET: $out" ;; esac
out=$(WEBHOOK_SECRET=$SECRET TETHER_BRIDGE_STATE_DIR=$T/state "$BRIDGE" check -c config/example.yaml 2>&1) ||
	fail "config/example.yaml with WEBHOOK_SECRET: $out"
ok "config/example.yaml takes its secret from WEBHOOK_SECRET"
