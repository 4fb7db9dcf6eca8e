#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Usage errors exit 2 with exactly one line on stderr and nothing on stdout, before anything is
# loaded; a non-root user gets exit 3 naming the capability. Needs no BPF.
. "$(dirname "$0")/lib.sh"
[ -x "$SOCKPULSE" ] || { echo "FAIL: agent binary $SOCKPULSE not built"; exit 1; }

bad() { # DESC ARGS...
	local desc=$1 rc lines
	shift
	timeout 20 "$SOCKPULSE" "$@" >"$SP_TMP/out" 2>"$SP_TMP/err" </dev/null
	rc=$?
	lines=$(wc -l <"$SP_TMP/err")
	SP_CHECKS=$((SP_CHECKS + 1))
	if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && [ ! -s "$SP_TMP/out" ]; then
		pass_check "$desc: exit 2: $(cat "$SP_TMP/err")"
	else
		fail "$desc ($*): exit $rc (expected 2), $lines stderr lines (expected 1), $(wc -c <"$SP_TMP/out") stdout bytes (expected 0)"
		head -n 5 "$SP_TMP/err" | sed 's/^/    stderr: /'
	fi
}

bad "port 65536" watch --json --port 65536
bad "port 0" watch --json --port 0
bad "port -1" watch --json -p -1
bad "empty port list item" watch --json --port 80,,81
bad "trailing comma in port list" watch --json --port 80,
bad "reversed port range" watch --json --port 9000-8000
bad "port garbage" watch --json --port http
bad "duration -1" watch --json --duration -1
bad "duration garbage" watch --json --duration abc
bad "coalesce abc" watch --json --coalesce abc
bad "coalesce empty" watch --json --coalesce ""
bad "ring size not a power of two" watch --json --ring-size 3000
bad "ring size garbage" watch --json --ring-size lots
bad "connect hook unknown" watch --json --connect-hook uprobe
bad "unknown option" watch --json --frobnicate
bad "missing option value" watch --json --port
bad "unknown command" frobnicate

# Missing privilege: a copy of the binary the unprivileged user can run.
if command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ]; then
	chmod 755 "$SP_TMP"
	cp "$SOCKPULSE" "$SP_TMP/sockpulse" && chmod 755 "$SP_TMP/sockpulse"
	timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		"$SP_TMP/sockpulse" watch --json --duration 1 >"$SP_TMP/out" 2>"$SP_TMP/err" </dev/null
	rc=$?
	check_eq "unprivileged watch exits 3" "$rc" 3
	check "unprivileged watch says which capability: $(head -n1 "$SP_TMP/err")" grep -q 'CAP_BPF' "$SP_TMP/err"
	check "unprivileged watch prints nothing on stdout" test ! -s "$SP_TMP/out"
else
	log "privilege check not run (needs root to drop to nobody, and setpriv)"
fi
sp_finish
