#!/bin/sh
# Installs the Debian packages tether-bridge needs to build and test, when any is missing
# (procps: ps for the runner's stray-process check; clang-format: make fmt-check).
# Needs root (or passwordless sudo) only when something is missing.
set -eu
pkgs="build-essential pkg-config libcurl4-openssl-dev libjansson-dev libyajl-dev libyaml-dev libmosquitto-dev
mosquitto mosquitto-clients libsqlite3-dev libmicrohttpd-dev libssl-dev libcmocka-dev curl
tzdata valgrind jq sqlite3 libsystemd-dev systemd man-db groff-base procps clang-format"
# `make fuzz` only (scripts/deps.sh fuzz): libFuzzer comes with clang
[ "${1:-}" = fuzz ] && pkgs="$pkgs clang"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "deps: missing packages:$missing (run 'make deps' as root)" >&2; exit 1
	fi
else SUDO=""; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
