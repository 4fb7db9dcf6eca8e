#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# ./tests/valgrind.sh BIN...: runs each unit test binary under valgrind memcheck
# (--leak-check=full; any error or definite/possible leak fails it). One line per binary,
# then "N passed, N failed"; the full output of each goes to build/test-logs/valgrind/NAME.log.
# Exit status: 0 if every binary passed.
set -u

[ $# -gt 0 ] || { echo "usage: $0 BIN..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }
logs=build/test-logs/valgrind
mkdir -p "$logs"
timeout=${SP_VALGRIND_TIMEOUT:-600}
passed=0
failed=0
for bin in "$@"; do
	name=$(basename "$bin")
	log=$logs/$name.log
	timeout -k 5 "$timeout" valgrind --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite,possible "$bin" >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		printf '%-28s PASS  (%s)\n' "$name" "$(grep -m1 -o 'total heap usage: .*' "$log")"
	else
		failed=$((failed + 1))
		printf '%-28s FAIL  (exit %d, %s)\n' "$name" $rc \
			"$(grep -m1 -o 'ERROR SUMMARY: [0-9]* errors' "$log")"
		grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Process terminating)' \
			"$log" | head -n 10 | sed 's/^/    /'
		echo "    full log: $log"
	fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
