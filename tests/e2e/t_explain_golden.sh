# `tether-bridge explain` on every case under tests/data/explain/<case>/: config.yaml and
# input.json (optional zones.json as --zones, optional args replacing the default --now)
# must print exactly expected.jsonl and exit 0 (or 1 when the case has an `exit` file
# saying 1). UPDATE=1 rewrites expected.jsonl from the current output (review it by hand).
. "$(dirname "$0")/lib.sh"
NOW_DEFAULT="--now 2020-07-09T09:00:00Z"
n=0
bad=0
for dir in "$ROOT"/tests/data/explain/*/; do
	dir=${dir%/}
	[ -f "$dir/config.yaml" ] || continue
	n=$((n + 1))
	set -- -c "$dir/config.yaml"
	[ -f "$dir/zones.json" ] && set -- "$@" --zones "$dir/zones.json"
	if [ -f "$dir/args" ]; then
		# shellcheck disable=SC2046
		set -- "$@" $(cat "$dir/args")
	else
		# shellcheck disable=SC2086
		set -- "$@" $NOW_DEFAULT
	fi
	"$BRIDGE" explain "$@" "$dir/input.json" >"$T/out" 2>"$T/err"
	rc=$?
	want_rc=0
	[ -f "$dir/exit" ] && want_rc=$(cat "$dir/exit")
	if [ "${UPDATE:-0}" = 1 ]; then
		cp "$T/out" "$dir/expected.jsonl"
		[ $rc -ne 0 ] && echo "$rc" >"$dir/exit"
	fi
	if [ $rc -ne "$want_rc" ] || ! cmp -s "$T/out" "$dir/expected.jsonl"; then
		bad=$((bad + 1))
		echo "case $dir: exit $rc (want $want_rc)"
		# pretty-printed when both sides are JSON (long lines are hard to read), else raw
		if command -v jq >/dev/null && jq . "$dir/expected.jsonl" >"$T/want.pretty" 2>/dev/null &&
			jq . "$T/out" >"$T/got.pretty" 2>/dev/null &&
			! cmp -s "$T/want.pretty" "$T/got.pretty"; then
			diff -u "$T/want.pretty" "$T/got.pretty" | head -n 60
		else
			diff -u "$dir/expected.jsonl" "$T/out" | head -n 60
		fi
		sed 's/^/stderr: /' "$T/err" | head -n 10
	fi
done
[ $n -ge 12 ] || fail "only $n explain cases found"
# the other checks below still run when a case differs; the script fails at the end
if [ $bad -eq 0 ]; then ok "$n explain cases print the expected lines"; else
	echo "FAIL: $bad of $n explain cases differ"; fi

# `explain -` reads the document from stdin
c=$ROOT/tests/data/explain/events-period-doc
# shellcheck disable=SC2086
"$BRIDGE" explain -c "$c/config.yaml" --zones "$c/zones.json" $NOW_DEFAULT - \
	<"$c/input.json" >"$T/stdin.out" 2>"$T/stdin.err" || fail "explain - exited $?: $(cat "$T/stdin.err")"
cmp -s "$T/stdin.out" "$c/expected.jsonl" || fail "explain - differs from explain FILE"
ok "explain - reads stdin"

# INPUT is required; a bad --now is a usage error
"$BRIDGE" explain -c "$c/config.yaml" --zones "$c/zones.json" >/dev/null 2>&1
[ $? -eq 2 ] || fail "explain without INPUT should exit 2"
"$BRIDGE" explain -c "$c/config.yaml" --zones "$c/zones.json" --now yesterday-ish "$c/input.json" \
	>/dev/null 2>&1
[ $? -eq 2 ] || fail "explain with a bad --now should exit 2"
ok "explain usage errors exit 2"

# errors: a bad config or unreadable/invalid input exits 1 with a message and prints nothing
printf 'tether: {base_url: "http://127.0.0.1:9", insecure: true, access_token: x}\nbogus: 1\n' \
	>"$T/bad.yaml"
out=$("$BRIDGE" explain -c "$T/bad.yaml" --zones "$c/zones.json" "$c/input.json" 2>"$T/e1")
rc=$?
[ $rc -eq 1 ] && [ -z "$out" ] || fail "bad config: exit $rc, output '$out'"
grep -q "bad.yaml:2:1: unknown key 'bogus'" "$T/e1" || fail "bad config: $(cat "$T/e1")"
out=$(printf '{"data": [' | "$BRIDGE" explain -c "$c/config.yaml" --zones "$c/zones.json" - 2>"$T/e2")
rc=$?
[ $rc -eq 1 ] && [ -z "$out" ] || fail "truncated JSON: exit $rc, output '$out'"
grep -q '^<stdin>:1:10: invalid JSON' "$T/e2" || fail "truncated JSON: $(cat "$T/e2")"
out=$("$BRIDGE" explain -c "$c/config.yaml" --zones "$T/missing.json" "$c/input.json" 2>"$T/e3")
[ $? -eq 1 ] && [ -z "$out" ] || fail "missing zones file: exit $?, output '$out'"
grep -q 'missing.json: unable to open' "$T/e3" || fail "missing zones file: $(cat "$T/e3")"
# without --zones and without the API, the zone id stands in and explain says why
z=$ROOT/tests/data/explain/zone-id-fallback
# shellcheck disable=SC2086
"$BRIDGE" explain -c "$z/config.yaml" $NOW_DEFAULT "$z/input.json" >/dev/null 2>"$T/e4" ||
	fail "zone-id-fallback exited $?"
grep -q 'zone names unavailable.*zone ids stand in' "$T/e4" || fail "no note: $(cat "$T/e4")"
ok "explain errors exit 1 with a message"
[ $bad -eq 0 ] || fail "$bad of $n explain cases differ (above)"
