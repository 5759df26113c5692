#!/bin/sh
# Runs every unit test binary (cmocka) and every end-to-end scenario, then prints
# "N passed, N failed" alone on the last line. Usage: tests/run.sh [unit|e2e|all] [NAME...]
# BUILD selects the build folder (build, build-asan); VALGRIND=1 runs unit tests under valgrind.
# A test also fails when it writes into the checkout, and a scenario when it sleeps instead
# of waiting, leaves a process running or leaves files in its temp folder.
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

# Scenarios get a TMPDIR of their own (lib.sh makes $T in it), so what one leaves is seen
tmproot=$(mktemp -d "${TMPDIR:-/tmp}/tb-run.XXXXXX") || {
	echo "unable to create a temp folder"
	echo "0 passed, 1 failed"
	exit 1
}
trap 'rm -rf "$tmproot"' EXIT

# tree_state: the checkout's changed and untracked files, ignored ones (build/) left out;
# nothing outside a git checkout
tree_state() { git status --porcelain --untracked-files=all 2>/dev/null | sort; }
# tree_writes BEFORE: what changed in the checkout since tree_state printed BEFORE
tree_writes() {
	printf '%s\n' "$1" >"$tmproot/tree.before"
	tree_state >"$tmproot/tree.after"
	comm -13 "$tmproot/tree.before" "$tmproot/tree.after" | sed '/^$/d'
}

# fail_extra NAME WHAT DETAILS: fails a test that ran for a reason found after it ran
fail_extra() {
	echo "FAIL $1: $2"
	printf '%s\n' "$3" | head -n 20 | sed 's/^/    /'
	case " $failures " in *" $1 "*) ;; *) failures="$failures $1" ;; esac
}

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
		before=$(tree_state)
		CMOCKA_MESSAGE_OUTPUT=stdout timeout 600 $cmd >"$log" 2>&1
		rc=$?
		wrote=$(tree_writes "$before")
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
		if [ -n "$wrote" ]; then
			[ $rc -eq 0 ] && { passed=$((passed - 1)); failed=$((failed + 1)); }
			fail_extra "$name" "wrote into the checkout (tests must write under /tmp)" "$wrote"
		fi
	done
fi

if [ "$what" = e2e ] || [ "$what" = all ]; then
	for t in tests/e2e/t_*.sh; do
		[ -f "$t" ] || continue
		name=$(basename "$t" .sh)
		selected "$name" || continue
		log=$logdir/$name.log
		tmp=$tmproot/$name
		mkdir -p "$tmp"
		before=$(tree_state)
		start=$(date +%s)
		# a session of its own: whatever the scenario started and left running is in it
		TMPDIR=$tmp setsid -w bash -c 'echo $$ >"$0.sid"; exec timeout 300 bash "$1"' \
			"$tmp" "$t" >"$log" 2>&1
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
		extra=0
		sid=$(cat "$tmp.sid" 2>/dev/null)
		stray=$([ -n "$sid" ] && ps -o pid=,args= -s "$sid")
		if [ -n "$stray" ]; then
			extra=1
			fail_extra "$name" "left processes running (now killed)" "$stray"
			for p in $(ps -o pid= -s "$sid"); do kill -9 "$p" 2>/dev/null; done
			n=20
			while [ $n -gt 0 ] && [ -n "$(ps -o pid= -s "$sid")" ]; do sleep 0.1; n=$((n - 1)); done
		fi
		left=$(cd "$tmp" && find . -mindepth 1 -maxdepth 2 | sed 's|^\./||')
		if [ -n "$left" ] && [ "${KEEP:-0}" != 1 ]; then
			extra=1
			fail_extra "$name" "left files in its temp folder" "$left"
		fi
		rm -rf "$tmp" "$tmp.sid"
		wrote=$(tree_writes "$before")
		if [ -n "$wrote" ]; then
			extra=1
			fail_extra "$name" "wrote into the checkout (scenarios write under \$T)" "$wrote"
		fi
		# the one way to pause is quiet_for, which says why (lib.sh)
		slept=$(grep -n '^[^#]*\bsleep\b' "$t")
		if [ -n "$slept" ]; then
			extra=1
			fail_extra "$name" "sleeps: wait for the event (wait_for, wait_log, wait_cycles) or use quiet_for SECONDS WHY" "$slept"
		fi
		[ $extra = 1 ] && [ $rc -eq 0 ] && { passed=$((passed - 1)); failed=$((failed + 1)); }
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
