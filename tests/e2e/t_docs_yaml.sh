# The configurations users copy are real.
# 1. Every ```yaml block of README.md and docs/ (docs/**) passes `tether-bridge check`, with
#    the environment variables it names set to plausible values (secrets: whsec_ and 32
#    random bytes). A block fenced ```yaml home-assistant is Home Assistant's configuration,
#    not the bridge's, and is not read. A block marked `<!-- fragment -->` on the line before is skipped (keep
#    those few); a block without a `tether:` key gets a small head (tether, state_dir, an
#    MQTT broker `home`, a webhook `slack`), and one that starts with a list item is read as
#    items of `rules:`. Real paths are moved into $T: state directories, /etc/tether-bridge/,
#    and every watchlist file is created with one plate.
# 2. The check summary docs/configuration.md shows is what check prints for the README's
#    sample.
# 3. config/example.yaml ships no working secret: it names ${WEBHOOK_SECRET}; `check`
#    refuses it without the variable and accepts it with one.
# 4. No doc names a file outside the repository or links to a file that does not exist.
. "$(dirname "$0")/lib.sh"
# docs: the Markdown files, named relative to the tree (messages say README.md:LINE)
docs() { (cd "$ROOT" && echo README.md && find docs -name '*.md' | sort); }
SECRET=whsec_$(head -c 32 /dev/urandom | base64 -w0)

# blocks FILE: writes each checked block of FILE to $T/blocks/N/tether-bridge.yaml and its
# source (FILE:LINE) to $T/blocks/N/from; counts skipped fragments in $T/skipped
n=0
: >"$T/skipped"
for f in $(docs); do
	awk -v F="$f" -v OUT="$T/raw.$(printf '%s' "$f" | tr / _)" '
		/^```yaml[ \t]*$/ { inb = 1; k++; file = OUT "." k
			print F ":" NR (prev ~ /<!-- fragment -->/ ? " fragment" : "") > (file ".from"); next }
		/^```/ { inb = 0 }
		inb { print > file }
		NF { prev = $0 }' "$ROOT/$f"
done
for from in "$T"/raw.*.from; do
	[ -e "$from" ] || continue
	raw=${from%.from}
	if grep -q ' fragment$' "$from"; then
		echo "$(cat "$from")" >>"$T/skipped"
		continue
	fi
	n=$((n + 1))
	d=$T/blocks/$n
	mkdir -p "$d/etc"
	cp "$from" "$d/from"
	{
		if ! grep -q '^tether:' "$raw"; then
			cat <<HEAD
tether: {base_url: "https://my.timeline.is", access_token: "\${TETHER_TOKEN}"}
state_dir: /var/lib/tether-bridge
mqtt: {home: {url: "mqtt://127.0.0.1:1883"}}
webhooks: {slack: {url: "\${SLACK_WEBHOOK_URL}", format: slack}}
HEAD
			grep -v '^[[:space:]]*\(#.*\)\?$' "$raw" | head -n 1 | grep -q '^  - ' && echo "rules:"
		fi
		cat "$raw"
	} | sed -e "s|/var/lib/tether-bridge|$d/state|g" -e "s|/etc/tether-bridge/|$d/etc/|g" \
		>"$d/tether-bridge.yaml"
	# every watchlist file it names, relative to the config's directory
	for w in $(sed -n 's/.*file: *\([^,} ]*\).*/\1/p' "$d/tether-bridge.yaml"); do
		case "$w" in /*) p=$w ;; *) p=$d/$w ;; esac
		mkdir -p "$(dirname "$p")"
		echo "AB12CDE,a plate" >"$p"
	done
done
[ $n -ge 3 ] || fail "only $n yaml blocks found"
[ "$(wc -l <"$T/skipped")" -le 2 ] || fail "too many fragments: $(cat "$T/skipped")"

# env_for FILE: NAME=value for every ${NAME} the file names
env_for() {
	for v in $(grep -o '\${[A-Za-z_][A-Za-z0-9_]*' "$1" | sed 's/^\${//' | sort -u); do
		case "$v" in
		*SECRET*) echo "$v=$SECRET" ;;
		*URL*) echo "$v=https://hooks.slack.com/services/T0000/B0000/XXXXXXXX" ;;
		*PORT*) echo "$v=8080" ;;
		*DIR*) echo "$v=$T/state-$v" ;;
		*) echo "$v=value-of-$v" ;;
		esac
	done
}
bad=0
for d in "$T"/blocks/*/; do
	out=$(cd "$d" && env $(env_for tether-bridge.yaml) "$BRIDGE" check -c tether-bridge.yaml 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		bad=$((bad + 1))
		echo "$(cat "$d/from"): check exits $rc:"
		echo "$out"
	fi
	case "$(cat "$d/from")" in README.md:*) [ -z "${readme_out:-}" ] && readme_out=$out ;; esac
done
[ $bad -eq 0 ] || fail "$bad of $n yaml blocks of the docs do not pass check"
ok "$n yaml blocks of README.md and docs/ pass check ($(wc -l <"$T/skipped") fragments skipped)"

want=$(grep -o '`tether-bridge.yaml: ok: [^`]*`' "$ROOT/docs/configuration.md" | tr -d '`')
[ -n "$want" ] || fail "docs/configuration.md shows no check summary"
[ "$readme_out" = "$want" ] || fail "documented summary '$want', check prints '$readme_out'"
ok "the documented check summary is what check prints"

grep -nE 'whsec_[A-Za-z0-9+/=]{8,}' "$ROOT/config/example.yaml" && fail "config/example.yaml holds a secret"
out=$(env -u WEBHOOK_SECRET TETHER_BRIDGE_STATE_DIR=$T/state "$BRIDGE" check -c "$ROOT/config/example.yaml" 2>&1) &&
	fail "config/example.yaml passes check without WEBHOOK_SECRET: $out"
case "$out" in *"'WEBHOOK_SECRET' is not set"*) ;; *) fail "no word on WEBHOOK_SECRET: $out" ;; esac
out=$(WEBHOOK_SECRET=$SECRET TETHER_BRIDGE_STATE_DIR=$T/state "$BRIDGE" check -c "$ROOT/config/example.yaml" 2>&1) ||
	fail "config/example.yaml with WEBHOOK_SECRET: $out"
ok "config/example.yaml takes its secret from WEBHOOK_SECRET"

# the docs stand alone: no file outside the repository, no relative link that goes nowhere
(cd "$ROOT" && grep -rnE '\.\./shared|tether-api\.md|SPEC\.md|SPEC section|STYLE\.md' README.md docs/) &&
	fail "the docs name files outside the repository"
for f in $(docs); do
	for l in $(grep -o '](\([^)#h][^)]*\)' "$ROOT/$f" | sed 's/^](//; s/#.*//'); do
		[ -e "$ROOT/$(dirname "$f")/$l" ] || fail "$f: link to $l goes nowhere"
	done
done
ok "the docs link only to files that exist in the repository"
