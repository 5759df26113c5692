# A short chaos soak (tests/soak/, docs/reliability.md): two minutes of every fault at once
# against a real mosquitto, two receivers and the simulator, then the invariant checker.
# SOAK and SEED override the length and the seed (the summary prints the seed to replay).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# a failed run's folder is copied next to the test logs: the runner removes its temp folder
cd "$ROOT" && SOAK=${SOAK:-2m} SOAK_SAVE="$ROOT/${BUILD:-build}/test-logs/t_soak_short.run" \
	exec python3 tests/soak/soak.py
