# `tether-bridge check` on every broken config and rule file under tests/data (check-invalid:
# cases only the whole program sees, such as errors across sections in file order): exit 1 and
# exactly the expected FILE:LINE:COL lines; the valid examples exit 0 with a summary.
. "$(dirname "$0")/lib.sh"
n=0
bad=0
for dir in "$ROOT"/tests/data/config-invalid/*/ "$ROOT"/tests/data/rules-invalid/*/ \
	"$ROOT"/tests/data/check-invalid/*/; do
	[ -f "$dir/config.yaml" ] || continue
	n=$((n + 1))
	cfg=${dir}config.yaml
	out=$("$BRIDGE" check -c "$cfg" 2>/dev/null)
	rc=$?
	# errors in the config file itself are printed as cfg:LINE:COL: ...; other files
	# (watchlists, secrets) keep their own path, written relative to the case in `error`,
	# or to the tree inside a message
	got=$(printf '%s\n' "$out" | sed "s|^$cfg:||; s|^${dir}||; s|$ROOT/||g")
	want=$(cat "$dir/error")
	if [ $rc -ne 1 ] || [ "$got" != "$want" ]; then
		bad=$((bad + 1))
		echo "case $dir: exit $rc"
		echo "--- want"; echo "$want"; echo "--- got"; echo "$got"
	fi
done
[ $n -ge 40 ] || fail "only $n invalid cases found"
for cfg in "$ROOT"/config/example.yaml "$ROOT"/config/demo.yaml; do
	[ -f "$cfg" ] || continue
	out=$(TETHER_BRIDGE_STATE_DIR=$T/state WEBHOOK_SECRET=whsec_ZXhhbXBsZS1zZWNyZXQtMzItYnl0ZXMtbG9uZyEh "$BRIDGE" check -c "$cfg") || fail "$cfg: check failed: $out"
	case "$out" in *ok*) ;; *) fail "$cfg: no summary: $out" ;; esac
done
[ $bad -eq 0 ] || fail "$bad of $n cases differ"
ok "$n invalid configs rejected with the expected positions"
