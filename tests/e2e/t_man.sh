# The man pages are true to the program: they render without groff warnings, tether-bridge(1)
# names every command and option the binary's --help lists, and tether-bridge.yaml(5) names
# every key the loaders accept (the key tables of config/config.c, config/ha.c and
# rules/rules_compile.c).
. "$(dirname "$0")/lib.sh"
M1=$ROOT/man/tether-bridge.1
M5=$ROOT/man/tether-bridge.yaml.5
for m in "$M1" "$M5"; do
	w=$(groff -man -ww -z "$m" 2>&1)
	[ -z "$w" ] || fail "$(basename "$m"): groff warnings: $w"
done
render() { LC_ALL=C groff -man -Tascii -P-cbou -rLL=200n "$1" | tr -s ' '; }
render "$M1" >"$T/man1.txt"
render "$M5" >"$T/man5.txt"
if command -v man >/dev/null 2>&1; then
	LC_ALL=C MANWIDTH=100 man -l "$M1" >/dev/null 2>"$T/man.err" || fail "man -l: $(cat "$T/man.err")"
	LC_ALL=C MANWIDTH=100 man -l "$M5" >/dev/null 2>"$T/man.err" || fail "man -l: $(cat "$T/man.err")"
fi
ok "both pages render without warnings"

# commands: "auth url", "dlq list", ... as the global --help lists them
"$BRIDGE" --help >"$T/help.txt" || fail "--help failed"
sed -n '/^commands:/,/^$/p' "$T/help.txt" | sed -nE 's/^  ([a-z]+( [a-z]+)?)( .*)?$/\1/p' >"$T/cmds"
[ "$(wc -l <"$T/cmds")" -ge 9 ] || fail "too few commands in --help: $(cat "$T/cmds")"
while read -r c; do
	grep -q "tether-bridge $c\b\|^ *$c\b" "$T/man1.txt" || fail "tether-bridge(1) does not describe '$c'"
done <"$T/cmds"
# options: every --long option of the global and per-command help
opts=$(for c in "" $(awk '{ print $1 }' "$T/cmds" | sort -u); do "$BRIDGE" $c --help; done |
	grep -o -- '--[a-z][a-z-]*' | sort -u)
for o in $opts; do
	grep -q -- "$o\b" "$T/man1.txt" || fail "tether-bridge(1) does not mention $o"
done
ok "tether-bridge(1) covers: $(tr '\n' ',' <"$T/cmds") $(echo $opts)"

keys=$(for f in config/config.c config/ha.c rules/rules_compile.c; do
	awk '/static const char \*const (keys|dkeys|lkeys|top)\[\] = \{/ { on = 1 } on { print } on && /NULL\}/ { on = 0 }' "$ROOT/$f"
done | grep -o '"[a-z_]*"' | tr -d '"' | sort -u)
[ "$(echo "$keys" | wc -l)" -ge 60 ] || fail "too few keys found in the loaders: $(echo $keys)"
missing=""
for k in $keys; do
	grep -qw -- "$k" "$T/man5.txt" || missing="$missing $k"
done
[ -z "$missing" ] || fail "tether-bridge.yaml(5) does not name:$missing"
ok "tether-bridge.yaml(5) names all $(echo "$keys" | wc -l) keys"
