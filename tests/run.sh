#!/bin/sh
# Runs every unit test binary (cmocka) and every end-to-end scenario, then prints
# "N passed, N failed" alone on the last line. Usage: tests/run.sh [unit|e2e|all] [NAME...]
# BUILD selects the build folder (build, build-asan); VALGRIND=1 runs unit tests under valgrind.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
what=${1:-all}
[ $# -gt 0 ] && shift
filter="$*"
passed=0
failed=0
failures=""
logdir=$BUILD/test-logs
mkdir -p "$logdir"

selected() {
	[ -z "$filter" ] && return 0
	for f in $filter; do case "$1" in *"$f"*) return 0 ;; esac; done
	return 1
}

if [ "$what" = unit ] || [ "$what" = all ]; then
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		selected "$name" || continue
		log=$logdir/$name.log
		if [ "${VALGRIND:-0}" = 1 ]; then
			cmd="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 $t"
		else
			cmd=$t
		fi
		CMOCKA_MESSAGE_OUTPUT=stdout timeout 600 $cmd >"$log" 2>&1
		rc=$?
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
		p=${p:-0}
		f=${f:-0}
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
		passed=$((passed + p))
		failed=$((failed + f))
		if [ $rc -ne 0 ]; then
			failures="$failures $name"
			echo "FAIL $name ($p passed, $f failed; log: $log)"
			sed -n '/\[  FAILED  \]\|\[  ERROR   \]\|ERROR: \|runtime error\|Assertion\|failure/p' "$log" | head -n 20
		else
			echo "ok   $name ($p tests)"
		fi
	done
fi

if [ "$what" = e2e ] || [ "$what" = all ]; then
	for t in tests/e2e/t_*.sh; do
		[ -f "$t" ] || continue
		name=$(basename "$t" .sh)
		selected "$name" || continue
		log=$logdir/$name.log
		start=$(date +%s)
		timeout 300 bash "$t" >"$log" 2>&1
		rc=$?
		secs=$(($(date +%s) - start))
		if [ $rc -eq 0 ]; then
			passed=$((passed + 1))
			echo "ok   $name (${secs}s)"
		else
			failed=$((failed + 1))
			failures="$failures $name"
			echo "FAIL $name (exit $rc, ${secs}s; log: $log)"
			tail -n 25 "$log" | sed 's/^/    /'
		fi
	done
fi

# Fuzz corpora and past findings (tests/fuzz/corpus/NAME, tests/fuzz/findings/NAME), replayed
# by $BUILD/fuzz/replay-NAME without libFuzzer: one test per target. "fuzz" runs only these.
if [ "$what" = fuzz ] || [ "$what" = all ]; then
	for t in "$BUILD"/fuzz/replay-*; do
		[ -x "$t" ] || continue
		target=${t##*/replay-}
		name=fuzz-$target
		selected "$name" || continue
		log=$logdir/$name.log
		set --
		for d in tests/fuzz/corpus/$target tests/fuzz/findings/$target; do
			[ -d "$d" ] && set -- "$@" "$d"
		done
		if timeout 600 "$t" "$@" >"$log" 2>&1; then
			passed=$((passed + 1))
			echo "ok   $name ($(tail -n 1 "$log" | sed 's/^replay: //'))"
		else
			failed=$((failed + 1))
			failures="$failures $name"
			echo "FAIL $name (log: $log)"
			grep -B 1 'property failed\|ERROR: \|runtime error' "$log" | head -n 10 | sed 's/^/    /'
		fi
	done
fi

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
