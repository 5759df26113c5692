#!/bin/sh
# Entry point of the container image: runs a tether-bridge command (default: run) with the
# configuration mounted at $TETHER_BRIDGE_CONFIG, and says what to mount when there is none.
set -eu
cfg=${TETHER_BRIDGE_CONFIG:-/etc/tether-bridge/tether-bridge.yaml}
[ $# -gt 0 ] || set -- run
case " $* " in
*" -h "* | *" --help "* | *" -V "* | *" --version "* | " version " | " help "*)
	exec tether-bridge "$@" ;;
*" -c "* | *" --config"*) # the caller names the configuration
	exec tether-bridge "$@" ;;
esac
if [ ! -f "$cfg" ]; then
	cat >&2 <<MSG
tether-bridge: no configuration at $cfg.
Mount your configuration there and keep the state in a volume, for example:

  docker run -v tether-state:/var/lib/tether-bridge \\
      -v \$PWD/tether-bridge.yaml:$cfg:ro \\
      -e TETHER_BASE_URL=https://my.timeline.is -e TETHER_TOKEN=... tether-bridge

A starting point for a real Tether account ships in the image:

  docker run --rm --entrypoint cat tether-bridge /usr/local/share/doc/tether-bridge/service.yaml

(contrib/docker-compose.yml in the source tree runs it with a mosquitto broker.)
MSG
	exit 1
fi
exec tether-bridge "$@" -c "$cfg"
