#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Test runner: ./tests/run.sh --out OUT [--unit-only|--integration-only|--fuzz-only]
#                             [--fuzz FUZZ_OUT] [NAME...]
#
# Runs every OUT/tests/test_* unit binary (cmocka), then every tests/integration/test_*.sh with
# SOCKPULSE=OUT/sockpulse and TOOLS=OUT/tools, then (with --fuzz) the fuzz smoke: every
# FUZZ_OUT/fuzz_* libFuzzer target over its seeds in tests/fuzz/corpus/ for a fixed number of
# runs (SP_FUZZ_RUNS, 20000), PASS when it finds nothing. NAME... restricts the run to those
# tests (file names without directory or .sh). Each test has a timeout (SP_UNIT_TIMEOUT,
# SP_INTEGRATION_TIMEOUT, SP_FUZZ_TIMEOUT seconds); its full output goes to
# OUT/test-logs/NAME.log. Prints one line per test, NAME and PASS/FAIL/SKIP with the reason,
# then exactly one summary line "N passed, N failed, N skipped".
# Exit status: 0 if nothing failed, 1 otherwise, 2 on usage error.
#
# An integration test exits 0 (pass), 77 (skip, "SKIP: reason" in its output) or anything else
# (fail, "FAIL: ..." lines say why).
set -u

usage() {
	echo "usage: $0 --out OUT [--unit-only|--integration-only|--fuzz-only] [--fuzz FUZZ_OUT]" \
		"[NAME...]" >&2
	exit 2
}

out=""
fuzz_out=""
mode=all
names=()
while [ $# -gt 0 ]; do
	case $1 in
	--out)
		[ $# -ge 2 ] || usage
		out=$2
		shift 2
		;;
	--unit-only) mode=unit; shift ;;
	--integration-only) mode=integration; shift ;;
	--fuzz-only) mode=fuzz; shift ;;
	--fuzz)
		[ $# -ge 2 ] || usage
		fuzz_out=$2
		shift 2
		;;
	-h | --help) usage ;;
	-*) usage ;;
	*) names+=("$1"); shift ;;
	esac
done
[ -n "$out" ] || usage

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
[ -d "$out" ] || { echo "run.sh: $out does not exist (build first)" >&2; exit 2; }
out=$(cd "$out" && pwd)
logs=$out/test-logs
mkdir -p "$logs"

unit_timeout=${SP_UNIT_TIMEOUT:-60}
integ_timeout=${SP_INTEGRATION_TIMEOUT:-120}
fuzz_runs=${SP_FUZZ_RUNS:-20000}
fuzz_timeout=${SP_FUZZ_TIMEOUT:-120} # about 10 s each on an idle machine; generous under load

# Sanitizer builds: fail hard on the first report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

passed=0
failed=0
skipped=0

selected() {
	local n
	[ ${#names[@]} -eq 0 ] && return 0
	for n in "${names[@]}"; do
		[ "$n" = "$1" ] && return 0
	done
	return 1
}

report() { # NAME RESULT REASON [SECONDS]
	printf '%-28s %-4s%s%s\n' "$1" "$2" "${4:+ $(printf '%5s s' "$4")}" "${3:+  ($3)}"
}

# Shows why a test failed: its FAIL lines, else the tail of its log.
show_failure() {
	local log=$1
	if grep -q '^FAIL:' "$log"; then
		grep -A6 '^FAIL:' "$log" | head -n 40 | sed 's/^/    /'
	else
		tail -n 15 "$log" | sed 's/^/    /'
	fi
	echo "    full log: $log"
}

run_unit() {
	local bin=$1 name log rc reason
	name=$(basename "$bin")
	log=$logs/$name.log
	timeout -k 5 "$unit_timeout" "$bin" >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		report "$name" PASS
		return
	fi
	failed=$((failed + 1))
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		reason="timed out after ${unit_timeout}s"
	else
		reason="exit $rc: $(grep -m3 -E 'FAILED|ERROR|Assert|runtime error|Sanitizer' "$log" |
			tr '\n' ' ' | cut -c1-200)"
	fi
	report "$name" FAIL "$reason"
	show_failure "$log"
}

run_integration() {
	local script=$1 name log rc reason t0=$SECONDS secs
	name=$(basename "$script" .sh)
	log=$logs/$name.log
	SOCKPULSE=$out/sockpulse TOOLS=$out/tools timeout -k 10 "$integ_timeout" bash "$script" \
		>"$log" 2>&1 </dev/null
	rc=$?
	secs=$((SECONDS - t0)) # how long each test takes, here and in a slow guest
	case $rc in
	0)
		passed=$((passed + 1))
		report "$name" PASS "" "$secs"
		;;
	77)
		skipped=$((skipped + 1))
		reason=$(grep -m1 '^SKIP:' "$log" | sed 's/^SKIP: *//')
		report "$name" SKIP "${reason:-no reason given}" "$secs"
		;;
	*)
		failed=$((failed + 1))
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			reason="timed out after ${integ_timeout}s"
		else
			reason="$(grep -c '^FAIL:' "$log") failed checks, first: $(grep -m1 '^FAIL:' "$log" |
				sed 's/^FAIL: *//' | cut -c1-160)"
		fi
		report "$name" FAIL "$reason" "$secs"
		show_failure "$log"
		;;
	esac
}

if [ "$mode" = all ] || [ "$mode" = unit ]; then
	found=0
	for bin in "$out"/tests/test_*; do
		[ -x "$bin" ] && [ -f "$bin" ] || continue
		found=1
		selected "$(basename "$bin")" || continue
		run_unit "$bin"
	done
	[ $found -eq 1 ] || echo "note: no unit test binaries in $out/tests"
fi

if [ "$mode" = all ] || [ "$mode" = integration ]; then
	for script in tests/integration/test_*.sh; do
		[ -f "$script" ] || continue
		selected "$(basename "$script" .sh)" || continue
		run_integration "$script"
	done
fi

# ---- fuzz smoke (tests/fuzz/): each libFuzzer target over its seed corpus, fixed runs ----
run_fuzz() {
	local bin=$1 name target log rc reason scratch opts=()
	name=$(basename "$bin")
	target=${name#fuzz_}
	log=$logs/$name.log
	# new inputs go to a scratch directory, never into the committed seeds
	scratch=$(mktemp -d) || { echo "run.sh: mktemp failed" >&2; exit 2; }
	[ -f "tests/fuzz/$name.options" ] && read -r -a opts <"tests/fuzz/$name.options"
	timeout -k 5 "$fuzz_timeout" "$bin" -runs="$fuzz_runs" -seed=1 "${opts[@]}" \
		-artifact_prefix="$scratch/" "$scratch" "tests/fuzz/corpus/$target" >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		report "$name" PASS "$(grep -m1 -o 'Done [0-9]* runs in [0-9]* second(s)' "$log")"
	else
		failed=$((failed + 1))
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			reason="timed out after ${fuzz_timeout}s"
		else
			reason="exit $rc: $(grep -m2 -E 'check failed|ERROR|runtime error' "$log" |
				tr '\n' ' ' | cut -c1-200)"
		fi
		cp "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* "$logs/" 2>/dev/null
		report "$name" FAIL "$reason"
		show_failure "$log"
	fi
	rm -rf "$scratch"
}

if [ -n "$fuzz_out" ] && { [ "$mode" = all ] || [ "$mode" = fuzz ]; }; then
	found=0
	for bin in "$fuzz_out"/fuzz_*; do
		[ -x "$bin" ] && [ -f "$bin" ] || continue
		found=1
		selected "$(basename "$bin")" || continue
		run_fuzz "$bin"
	done
	[ $found -eq 1 ] || echo "note: no fuzz targets in $fuzz_out"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
