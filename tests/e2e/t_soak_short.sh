# A short chaos soak (tests/soak/, docs/reliability.md): two minutes of every fault at once
# against a real mosquitto, two receivers and the simulator, then the invariant checker.
# SOAK and SEED override the length and the seed (the summary prints the seed to replay).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" && SOAK=${SOAK:-2m} exec python3 tests/soak/soak.py
