#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The layers of user/ (ARCHITECTURE.md) hold: the core folders (lib, decode, engine, output) are
# linked into the unit tests and fuzzers without libbpf, netlink, HTTP or curses, so no core file
# may include a header of the agent folders (kernel, cmd) or one of those libraries. Also: every
# folder the Makefile links is one ARCHITECTURE.md describes, every quoted include resolves to
# exactly one header (one folder per name), no source file is over 900 lines and no function
# over 150. No BPF, no traffic.
source "$(dirname "$0")/lib.sh"

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
core=(lib decode engine output)
agent=(kernel cmd)

for d in "${core[@]}" "${agent[@]}"; do
	check "user/$d exists" [ -d "user/$d" ]
	check "ARCHITECTURE.md describes user/$d/" grep -q "user/$d/" ARCHITECTURE.md
done
# Nothing left at the top of user/, and no folder the Makefile would not link.
check "no source file directly in user/" [ -z "$(find user -maxdepth 1 -type f -name '*.[ch]')" ]
for d in user/*/; do
	d=${d#user/}
	d=${d%/}
	check "user/$d is a layer the Makefile links" \
		grep -qE "^(CORE|AGENT)_DIRS *:=.*\b$d\b" Makefile
done

# Each header name in one folder only: the flat -I list would otherwise pick one silently.
dups=$(find user include -name '*.h' -printf '%f\n' | sort | uniq -d)
check "each header name exists once (duplicates: ${dups:-none})" [ -z "$dups" ]

n=0
for d in "${core[@]}"; do
	for f in user/"$d"/*.[ch]; do
		n=$((n + 1))
		while read -r h; do
			loc=$(find user include -name "$h" -print -quit)
			case $loc in
			user/kernel/* | user/cmd/*)
				fail "$f (core) includes $loc (agent layer)" ;;
			"")
				fail "$f includes \"$h\", which is in no folder of user/ or include/" ;;
			esac
		done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
		if grep -qE '^#include <(bpf/|libmnl|microhttpd|n?curses)' "$f"; then
			fail "$f (core) includes an agent-only library: $(grep -E '^#include <(bpf/|libmnl|microhttpd|n?curses)' "$f" | head -n1)"
		fi
	done
done
check "the core files were read ($n >= 40)" [ "$n" -ge 40 ]

while read -r lines f; do
	[ "$f" = total ] && continue
	SP_CHECKS=$((SP_CHECKS + 1))
	if [ "$lines" -le 900 ]; then
		pass_check "$f: $lines lines"
	else
		fail "$f has $lines lines (at most 900: split it by concern)"
	fi
done < <(wc -l user/*/*.[ch] bpf/*.[ch])

# Functions: a definition starts at column 0 (the style's), its body ends at the first "}" there.
long=$(awk '
	/^[A-Za-z_].*\(/ && !/;[ \t]*$/ { name = $0; line = FNR; cand = 1; next }
	/^\{/ && cand { start = line; fn = name; body = 1; cand = 0; next }
	!/^[ \t]/ && !/^\{/ { cand = 0 }
	/^\}/ && body { if (FNR - start + 1 > 150) printf "%s:%d (%d lines) ", FILENAME, start, FNR - start + 1; body = 0 }
' user/*/*.c bpf/*.c bpf/*.h)
check "no function over 150 lines (${long:-none})" [ -z "$long" ]

sp_finish
