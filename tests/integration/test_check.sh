#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `sockpulse check` and the connect-hook fallback:
#   - check prints one line per variant (fentry, kprobe, tracepoint) and exits 0;
#   - the kprobe programs pass the verifier here even where they cannot attach ("kprobe: load ok");
#   - watch (auto) runs the first variant check says attaches, in the order fentry > kprobe >
#     tracepoint, names it on stderr before "ready", and every JSON line carries it;
#   - a forced variant that cannot attach here fails with a reason instead of running another;
#   - --connect-hook tracepoint works when forced, also with the compat fd lookup (probe reads,
#     for kernels before 6.2): a connect() failing before any SYN is reported with its owner;
#   - --duration exits by itself with status 0;
#   - where kprobe attaches (as root): its return probe is a tracefs kretprobe following 4096
#     calls at once, removed when the agent stops; one left by a killed agent is removed by the
#     next start;
#   - start-up says plainly that a variant this kernel lacks is "not supported by this kernel",
#     without errno words (those come with -v); the exit summary has one line after a run that
#     saw nothing, and the events and lost lines after one that saw something.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

timeout 60 "$SOCKPULSE" check >"$SP_TMP/check.out" 2>"$SP_TMP/check.err"
rc=$?
check_eq "check exits 0 (at least one variant works)" "$rc" 0
sed 's/^/    check: /' "$SP_TMP/check.out"
for v in fentry kprobe tracepoint; do
	check "check prints a line for $v" grep -q "^$v: " "$SP_TMP/check.out"
done
check "kprobe variant passes the verifier (load ok)" grep -q '^kprobe: load ok' "$SP_TMP/check.out"
check "check names the fd lookup of the tracepoint variant" \
	grep -Eq '^tracepoint: load ok, attach ok, fd lookup (btf|compat)$' "$SP_TMP/check.out"
SOCKPULSE_FD_WALK=compat timeout 60 "$SOCKPULSE" check >"$SP_TMP/check-compat.out" 2>&1
check "the compat fd lookup passes the verifier and attaches" \
	grep -q '^tracepoint: load ok, attach ok, fd lookup compat$' "$SP_TMP/check-compat.out"
expected=""
for v in fentry kprobe tracepoint; do
	if grep -Eq "^$v: load ok, attach ok" "$SP_TMP/check.out"; then
		expected=$v
		break
	fi
done
check "check reports a variant that loads and attaches" test -n "$expected"
expected=${expected:-none}
# SP_CONNECT_HOOK (lib.sh) forces every watch of the test onto one variant.
[ -z "${SP_CONNECT_HOOK:-}" ] || expected=$SP_CONNECT_HOOK

ns_new c
agent_start auto c || sp_finish
nsx c "$SP_CONN" connect 127.0.0.1 5901 --deadline 10 >"$SP_TMP/conn.out" 2>&1
agent_stop auto
first=$(grep -n -m1 'ready' "$(agent_err auto)" | cut -d: -f1)
hook=$(grep -n -m1 -i "connect hook" "$(agent_err auto)" | cut -d: -f1)
check "watch names its connect hook variant on stderr before ready" test -n "$hook" -a -n "$first" -a "${hook:-99}" -lt "${first:-0}"
check "the variant watch names is $expected (the first one check says attaches)" \
	grep -Eqi "connect hook: $expected" "$(agent_err auto)"
expect "watch saw the test's refused connect" "$(agent_json auto)" \
	".event.action == \"tcp-connect\" and .sockpulse.failure == \"refused\""
expect_none "every tcp- line carries sockpulse.connect_hook $expected" "$(agent_json auto)" \
	"(.event.action | startswith(\"tcp-\")) and .sockpulse.connect_hook != \"$expected\""

# Forcing a variant that does not attach here must not silently run another one.
for v in fentry kprobe; do
	grep -Eq "^$v: load ok, attach ok" "$SP_TMP/check.out" && continue
	timeout 60 "$SOCKPULSE" watch --json --connect-hook $v --duration 5 \
		>"$SP_TMP/force-$v.out" 2>"$SP_TMP/force-$v.err"
	rc=$?
	# Not 3 ("missing privilege"): we are root; the kernel refuses the variant itself.
	check "--connect-hook $v (not attachable here, as root) exits 1, 4 or 5, got $rc" \
		test $rc -eq 1 -o $rc -eq 4 -o $rc -eq 5
	check "--connect-hook $v: stderr says why, naming $v" grep -qi "$v" "$SP_TMP/force-$v.err"
	check "--connect-hook $v: no ready" test "$(grep -c ready "$SP_TMP/force-$v.err")" -eq 0
done

export SOCKPULSE_FD_WALK=compat
agent_start forced c --connect-hook tracepoint || sp_finish
unset SOCKPULSE_FD_WALK
# c has only lo: connect() to 10.99.0.1 fails at the route lookup, before any SYN
nsx c "$SP_CONN" connect 10.99.0.1 5902 --deadline 10 >"$SP_TMP/noroute.out" 2>&1
agent_stop forced
check "--connect-hook tracepoint: stderr names tracepoint" grep -qi "connect hook: tracepoint" "$(agent_err forced)"
NP=$(kv "$SP_TMP/noroute.out" connect pid)
expect "compat fd lookup: the no-route connect is a local failure with ENETUNREACH, its owner and destination" \
	"$(agent_json forced)" ".event.action == \"tcp-connect\" and .sockpulse.failure == \"local\"
		and .error.code == \"ENETUNREACH\" and .process.pid == ${NP:-0}
		and .destination.ip == \"10.99.0.1\" and .destination.port == 5902"

# The kprobe variant's return probe (user/kernel/retprobe.c), where kprobes attach.
if grep -Eq '^kprobe: load ok, attach ok' "$SP_TMP/check.out"; then
	check "kprobe: check says its return probe follows 4096 calls at once" \
		grep -Eq '^kprobe: load ok, attach ok, 4096 calls followed at once$' "$SP_TMP/check.out"
	tfs=/sys/kernel/tracing
	[ -e $tfs/kprobe_events ] || tfs=/sys/kernel/debug/tracing
	true & dead=$!
	wait $dead
	echo "r4096:sockpulse/connret_${dead}_0 inet_stream_connect" >>$tfs/kprobe_events
	check "a stale probe of a dead agent is in tracefs before the start" \
		test -d $tfs/events/sockpulse/connret_${dead}_0
	timeout 60 "$SOCKPULSE" watch --json --connect-hook kprobe --netns "$(ns_path c)" \
		--duration 1 >/dev/null 2>"$SP_TMP/kprobe.err"
	check_eq "watch --connect-hook kprobe runs" "$?" 0
	check "the start removed the dead agent's probe" \
		test ! -e $tfs/events/sockpulse/connret_${dead}_0
	check "the stop removed its own: no sockpulse probe is left in $tfs/kprobe_events" \
		test "$(grep -c 'sockpulse/' $tfs/kprobe_events)" -eq 0
fi

start=$(date +%s)
timeout 30 "$SOCKPULSE" watch --json --netns "$(ns_path c)" --duration 2 >"$SP_TMP/dur.out" 2>"$SP_TMP/dur.err"
rc=$?
check_eq "--duration 2 exits by itself with status 0" "$rc" 0
check "--duration 2 took less than 20 s" test $(($(date +%s) - start)) -lt 20

# Start-up and exit noise. dur saw nothing (an idle namespace); auto saw a refused connect.
for v in fentry kprobe; do
	grep -q "^$v: .*(not supported by this kernel: " "$SP_TMP/check.out" || continue
	check "start-up says $v is not supported by this kernel" \
		grep -q "connect hook: .*$v: not supported by this kernel: " "$SP_TMP/dur.err"
done
check "start-up has no errno words without -v: $(grep 'connect hook' "$SP_TMP/dur.err")" \
	test "$(grep -Ec 'Operation not permitted|No such file or directory' "$SP_TMP/dur.err")" -eq 0
check_eq "a run that saw nothing has a one-line summary" \
	"$(grep -c 'summary:' "$SP_TMP/dur.err")" 1
check "... saying so" grep -q "summary: no events, nothing lost" "$SP_TMP/dur.err"
check "a run that saw events has the events line" grep -q "summary: events [1-9]" "$(agent_err auto)"
check "... and the lost line" grep -q "summary: lost 0:" "$(agent_err auto)"
timeout 30 "$SOCKPULSE" watch -v --json --netns "$(ns_path c)" --duration 1 >/dev/null \
	2>"$SP_TMP/v.err"
check "-v: the whole summary" test "$(grep -c 'summary:' "$SP_TMP/v.err")" -ge 4
check "-v: libbpf's own lines" grep -q "libbpf: " "$SP_TMP/v.err"
sp_finish
