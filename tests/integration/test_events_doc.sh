#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# docs/EVENTS.md is the public contract: every event.action and every sockpulse_* metric the code
# emits must be named there. The names are read from the code, where each kind of name is born:
#   - actions: the action table of user/output/names.c, the audit lines' line_new("...") in
#     user/engine/audit.c, and any literal "action\":\"..." written by hand anywhere in user/;
#   - metrics: every family() of user/output/metrics*.c, by its literal name or, when it passes an
#     array element, by the literals of that array.
# Each name must appear in the document in backquotes (`lease-expired`, `sockpulse_leases`).
# Also checks that README and --help point at the document. No BPF, no traffic.
source "$(dirname "$0")/lib.sh"

root=$(cd "$(dirname "$0")/../.." && pwd)
doc=$root/docs/EVENTS.md
src=$root/user

if [ ! -f "$doc" ]; then
	fail "docs/EVENTS.md is missing"
	sp_finish
fi

# One line per C file, comments left in: names only come from the patterns below.
flat() { cat "$@" | tr '\n\t' '  '; }

actions=$(
	{
		flat "$src/output/names.c" | grep -o 'action_names\[\] = {[^}]*}' |
			grep -o '\] = "[a-z][a-z-]*"' | grep -o '"[^"]*"'
		flat "$src/engine/audit.c" | grep -o 'line_new( *"[a-z][a-z-]*"' | grep -o '"[^"]*"'
		cat "$src"/*/*.c | grep -o 'action\\":\\"[a-z][a-z-]*' | sed 's/.*"//; s/^/"/; s/$/"/'
	} | tr -d '"' | sort -u
)

metrics_c=$(flat "$src"/output/metrics*.c)
metrics=$(
	{
		echo "$metrics_c" | grep -o 'family( *&\?b, *"[a-z_0-9]*"' | grep -o '"[^"]*"' |
			tr -d '"'
		# family(b, ARRAY[i], ...): the literals of that array's initializer
		for arr in $(echo "$metrics_c" | grep -o 'family( *&\?b, *[a-z_]*\[' |
			sed 's/.*, *//; s/\[$//' | sort -u); do
			echo "$metrics_c" | grep -o "\\*const $arr\\[\\] = {[^}]*}" |
				grep -o '"[a-z_0-9]*"' | tr -d '"'
		done
	} | sed 's/^/sockpulse_/' | sort -u
)

n_actions=$(echo "$actions" | grep -c .)
n_metrics=$(echo "$metrics" | grep -c .)
log "found $n_actions actions and $n_metrics metric families in the code"
# Guards against the extraction itself breaking silently (a refactor that renames a table).
check "the code's action table was read ($n_actions >= 16)" [ "$n_actions" -ge 16 ]
check "the code's metric families were read ($n_metrics >= 40)" [ "$n_metrics" -ge 40 ]

for a in $actions; do
	SP_CHECKS=$((SP_CHECKS + 1))
	if grep -qF "\`$a\`" "$doc"; then
		pass_check "$a"
	else
		fail "event.action '$a' is emitted by the code but not documented in docs/EVENTS.md"
	fi
done
for m in $metrics; do
	SP_CHECKS=$((SP_CHECKS + 1))
	if grep -qF "\`$m\`" "$doc"; then
		pass_check "$m"
	else
		fail "metric '$m' is exported by the code but not documented in docs/EVENTS.md"
	fi
done

check "README points at docs/EVENTS.md" grep -q 'docs/EVENTS.md' "$root/README.md"
"$SOCKPULSE" --help >"$SP_TMP/help" 2>&1
check "--help points at docs/EVENTS.md" grep -q 'docs/EVENTS.md' "$SP_TMP/help"

sp_finish
