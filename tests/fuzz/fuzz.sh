#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Runs the libFuzzer targets: ./tests/fuzz/fuzz.sh --out DIR (--seconds N | --runs N) [NAME...]
#
# Each DIR/fuzz_NAME runs alone, with tests/fuzz/corpus/NAME as its seeds and DIR/corpus/NAME
# as its growing working corpus (kept between runs, never the committed seeds), plus the flags
# in tests/fuzz/fuzz_NAME.options if there is one. A crashing input is saved under
# DIR/artifacts/NAME/. Prints one line per target with its executions, and exits 1 if any
# target crashed (its log: DIR/logs/NAME.log).
set -u

usage() {
	echo "usage: $0 --out DIR (--seconds N | --runs N) [NAME...]" >&2
	exit 2
}

out="" limit="" names=()
while [ $# -gt 0 ]; do
	case $1 in
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	--seconds) [ $# -ge 2 ] || usage; limit="-max_total_time=$2"; shift 2 ;;
	--runs) [ $# -ge 2 ] || usage; limit="-runs=$2"; shift 2 ;;
	-*) usage ;;
	*) names+=("$1"); shift ;;
	esac
done
[ -n "$out" ] && [ -n "$limit" ] || usage

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2
[ ${#names[@]} -gt 0 ] || for bin in "$out"/fuzz_*; do
	[ -x "$bin" ] && [ -f "$bin" ] && names+=("$(basename "$bin" | sed 's/^fuzz_//')")
done
if [ ${#names[@]} -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets in $out (make fuzz builds them)" >&2
	exit 2
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=0
printf '%-14s %14s %10s %8s  %s\n' target executions exec/s corpus result
for name in "${names[@]}"; do
	bin=$out/fuzz_$name
	[ -x "$bin" ] || { echo "fuzz.sh: $bin missing" >&2; failed=1; continue; }
	mkdir -p "$out/corpus/$name" "$out/artifacts/$name" "$out/logs"
	log=$out/logs/$name.log
	opts=()
	[ -f "tests/fuzz/fuzz_$name.options" ] && read -r -a opts <"tests/fuzz/fuzz_$name.options"
	start=$(date +%s)
	"$bin" "$limit" -print_final_stats=1 -artifact_prefix="$out/artifacts/$name/" "${opts[@]}" \
		"$out/corpus/$name" "tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	corpus=$(find "$out/corpus/$name" -type f | wc -l)
	if [ $rc -eq 0 ]; then
		result=PASS
	else
		result="FAIL (exit $rc, see $log and $out/artifacts/$name/)"
		failed=1
	fi
	printf '%-14s %14s %10s %8s  %s\n' "fuzz_$name" "${execs:-?}" \
		"$(( ${execs:-0} / (secs > 0 ? secs : 1) ))" "$corpus" "$result"
done
exit $failed
