#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Usage errors exit 2 with exactly one line on stderr and nothing on stdout, before anything is
# loaded; so does an option the command does not take. Each command has its own help (`CMD
# --help`, `help CMD`) listing only what it takes, under the section labels README uses.
# `--netns NAME` takes a name as `ip netns list` shows it. A non-root user gets exit 3 naming
# the capability.
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
bad "help of an unknown command" help frobnicate
bad "watch does not write a log" watch --log /tmp/x
bad "watch has no per-connection audit" watch --connections
bad "replay serves no metrics" replay --metrics 9177 -
bad "top does not print JSON" top --json
bad "audit has no port filter" audit -p 80
bad "netns name that does not exist" watch --json --netns "sp-no-such-ns-$$"
"$SOCKPULSE" watch --log /tmp/x 2>"$SP_TMP/err" </dev/null
check "the refusal names the option, the command and what the option is for" \
	grep -q "^sockpulse: --log does not apply to watch (it is for agent)" "$SP_TMP/err"

# Per-command help: exit 0, only that command's options, the general help has them all.
help_of() { # CMD: `sockpulse CMD --help` and `sockpulse help CMD` say the same
	"$SOCKPULSE" "$1" --help >"$SP_TMP/h1" 2>&1 </dev/null
	check_eq "$1 --help exits 0" "$?" 0
	"$SOCKPULSE" help "$1" >"$SP_TMP/h2" 2>&1 </dev/null
	check_eq "help $1 exits 0" "$?" 0
	check "$1 --help and help $1 print the same" cmp -s "$SP_TMP/h1" "$SP_TMP/h2"
	check "help $1 starts with its usage" grep -q "^Usage: sockpulse $1" "$SP_TMP/h1"
}
for c in watch top agent audit replay check; do
	help_of $c
done
"$SOCKPULSE" help watch >"$SP_TMP/hw"
check "watch's help has --port" grep -q -- "--port LIST" "$SP_TMP/hw"
check "watch's help has no --log" test "$(grep -c -- "--log " "$SP_TMP/hw")" -eq 0
"$SOCKPULSE" help agent >"$SP_TMP/ha"
check "agent's help has --log" grep -q -- "--log PATH" "$SP_TMP/ha"
check "agent's help has no --delay" test "$(grep -c -- "--delay" "$SP_TMP/ha")" -eq 0
"$SOCKPULSE" --help >"$SP_TMP/hg"
check "general help is longer than watch's" test "$(wc -l <"$SP_TMP/hg")" -gt "$(wc -l <"$SP_TMP/hw")"

# README "Commands and flags" carries the help's section labels, each as a bold label.
README=$(dirname "$0")/../../README.md
labels=$(sed -n 's/^\([A-Z][A-Za-z -]*\)\( (.*)\)\?:$/\1/p' "$SP_TMP/hg" | grep -v '^Usage\|^Commands\|^Exit status')
check "the general help has section labels" test -n "$labels"
while IFS= read -r l; do
	check "README has the help's section \"$l\"" grep -qF "**$l**" "$README"
done <<<"$labels"

# --netns NAME: the name `ip netns list` shows, as good as /run/netns/NAME.
if [ "$(id -u)" -eq 0 ] && [ -x "$SP_CONN" ] && ip netns add "$SP_ID-c"; then
	ip netns del "$SP_ID-c"
	ns_new c
	agent_start byname - --netns "$(ns_name c)" --duration 10 || sp_finish
	nsx c "$SP_CONN" connect 127.0.0.1 5999 --deadline 5 >/dev/null 2>&1
	agent_stop byname
	expect "--netns $(ns_name c): the refused connect in it, with its inode" \
		"$(agent_json byname)" \
		".event.action == \"tcp-connect\" and .sockpulse.netns == $(ns_inode c)"
else
	log "--netns NAME not run (needs root, network namespaces and $SP_CONN)"
fi

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
