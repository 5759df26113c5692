#!/bin/sh
# Runs each libFuzzer target built by `make fuzz` for FUZZ_TIME seconds (default 60), on a
# work copy of its corpus in $BUILD/fuzz/corpus/NAME (so the checkout is not touched);
# findings go to $BUILD/fuzz/findings/NAME/. Usage: tests/fuzz/run.sh [NAME...]
# Prints one line per target: executions, and the findings if any. Exit 1 if any was found.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-fuzz}
FUZZ_TIME=${FUZZ_TIME:-60}
names=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_\(.*\)\.c|\1|')}
found=0
for n in $names; do
	bin=$BUILD/fuzz/fuzz-$n
	work=$BUILD/fuzz/corpus/$n
	out=$BUILD/fuzz/findings/$n
	log=$BUILD/fuzz/$n.log
	[ -x "$bin" ] || { echo "fuzz: no $bin (make fuzz builds it)" >&2; exit 2; }
	mkdir -p "$work" "$out"
	[ -d tests/fuzz/corpus/$n ] && cp -n tests/fuzz/corpus/$n/* "$work"/ 2>/dev/null
	# a regex or a config can be slow without being wrong: -timeout reports it as a finding
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$bin" -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$out/" -print_final_stats=1 "$work" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ $rc -eq 0 ]; then
		echo "ok   fuzz-$n: ${execs:-?} executions in ${FUZZ_TIME}s"
	else
		found=1
		echo "FIND fuzz-$n: ${execs:-?} executions, exit $rc; log: $log"
		grep -m 3 'property failed\|ERROR: \|runtime error\|Test unit written' "$log" | sed 's/^/    /'
	fi
done
exit $found
