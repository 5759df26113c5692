# make install / uninstall: into a DESTDIR (PREFIX=/usr) and with the default PREFIX
# (/usr/local), the installed binary runs --version and checks the installed example
# configs, the man pages render, the unit's ExecStart names the installed binary and
# verifies cleanly; uninstall leaves no file behind.
. "$(dirname "$0")/lib.sh"
MK="make -s --no-print-directory -C $ROOT BUILD=$BUILD"

$MK install DESTDIR="$T/root" PREFIX=/usr >"$T/install.log" 2>&1 || fail "make install: $(cat "$T/install.log")"
R=$T/root/usr
for f in bin/tether-bridge share/man/man1/tether-bridge.1 share/man/man5/tether-bridge.yaml.5 \
	share/doc/tether-bridge/service.yaml share/doc/tether-bridge/example.yaml \
	lib/systemd/system/tether-bridge.service; do
	[ -f "$R/$f" ] || fail "not installed: /usr/$f ($(cd "$T/root" && find . -type f))"
done
[ -x "$R/bin/tether-bridge" ] || fail "the binary is not executable"
[ "$(stat -c %a "$R/share/man/man1/tether-bridge.1")" = 644 ] || fail "man page mode"
[ "$(find "$T/root" -type f | wc -l)" -eq 6 ] || fail "unexpected files: $(find "$T/root" -type f)"
ok "make install DESTDIR PREFIX=/usr: 6 files"

"$R/bin/tether-bridge" --version | grep -qE '^tether-bridge [0-9.]+$' || fail "installed --version"
TETHER_TOKEN=tok STATE_DIRECTORY=$T/state "$R/bin/tether-bridge" check \
	-c "$R/share/doc/tether-bridge/service.yaml" >"$T/check.out" 2>&1 ||
	fail "check on the installed service.yaml: $(cat "$T/check.out")"
TETHER_BRIDGE_STATE_DIR=$T/state WEBHOOK_SECRET=whsec_ZXhhbXBsZS1zZWNyZXQtMzItYnl0ZXMtbG9uZyEh \
	"$R/bin/tether-bridge" check \
	-c "$R/share/doc/tether-bridge/example.yaml" >>"$T/check.out" 2>&1 ||
	fail "check on the installed example.yaml: $(cat "$T/check.out")"
grep -c ': ok: ' "$T/check.out" | grep -q '^2$' || fail "no summaries: $(cat "$T/check.out")"
# service.yaml is a starting point for a real account, not the simulator
grep -q '127.0.0.1:8080\|sim-static-token\|insecure: true' "$R/share/doc/tether-bridge/service.yaml" &&
	fail "service.yaml points at the simulator"
ok "installed binary: --version and check on both example configs"

if command -v man >/dev/null 2>&1; then
	LC_ALL=C MANWIDTH=80 man -M "$T/root/usr/share/man" 1 tether-bridge 2>&1 | grep -q 'tether-bridge - Tether' ||
		fail "man 1 tether-bridge from the installed pages"
	LC_ALL=C MANWIDTH=80 man -M "$T/root/usr/share/man" 5 tether-bridge.yaml 2>&1 | grep -q 'configuration of tether-bridge' ||
		fail "man 5 tether-bridge.yaml from the installed pages"
	ok "man finds both installed pages"
fi

U=$R/lib/systemd/system/tether-bridge.service
grep -q '^ExecStart=/usr/bin/tether-bridge run ' "$U" || fail "ExecStart: $(grep ExecStart "$U")"
grep -q '/usr/local' "$U" && fail "the unit still names /usr/local: $(grep /usr/local "$U")"
ok "the unit runs /usr/bin/tether-bridge"

$MK uninstall DESTDIR="$T/root" PREFIX=/usr >"$T/uninstall.log" 2>&1 || fail "make uninstall: $(cat "$T/uninstall.log")"
left=$(find "$T/root" ! -type d)
[ -z "$left" ] || fail "left after uninstall: $left"
[ -d "$R/share/doc/tether-bridge" ] && fail "the doc directory is left"
ok "make uninstall leaves no file"

# the default PREFIX is /usr/local
$MK install DESTDIR="$T/local" >"$T/install.log" 2>&1 || fail "make install (default PREFIX): $(cat "$T/install.log")"
[ -x "$T/local/usr/local/bin/tether-bridge" ] || fail "default PREFIX is not /usr/local: $(find "$T/local" -type f)"
[ -f "$T/local/usr/local/lib/systemd/system/tether-bridge.service" ] || fail "no unit under /usr/local"
$MK uninstall DESTDIR="$T/local" >/dev/null 2>&1 || fail "make uninstall (default PREFIX)"
[ -z "$(find "$T/local" ! -type d)" ] || fail "left after uninstall: $(find "$T/local" ! -type d)"
ok "default PREFIX /usr/local, installed and uninstalled"

# an installed unit, with its real paths (PREFIX without DESTDIR), verifies cleanly
if command -v systemd-analyze >/dev/null 2>&1; then
	$MK install PREFIX="$T/prefix" >"$T/install.log" 2>&1 || fail "make install PREFIX: $(cat "$T/install.log")"
	out=$(systemd-analyze verify --man=no "$T/prefix/lib/systemd/system/tether-bridge.service" 2>&1) ||
		fail "verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
	ok "systemd-analyze verify on the installed unit: clean"
else
	echo "note: systemd-analyze is not installed; the installed unit was not verified"
fi
