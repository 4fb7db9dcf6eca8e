#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Fault: two agents at once on the same namespace.
#   - With their own log files and metrics ports, both work: each loads and attaches its own
#     programs (nothing is pinned or shared), each sees the same connection completely, each log
#     counts its own sequence from 1, each /metrics counts the connect. Stopping one leaves the
#     other working.
#   - A third agent asking for a metrics address already taken does not start: it exits with
#     status 1 before "ready", and its one error line names the address and the reason; the agent
#     that holds the port is not disturbed.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"

ns_new c
progs_of() { { grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null || true; } | awk '{ print $2 }' | sort -un; }

host_agent_start a c --log-actions all || sp_finish
host_agent_start b c --log-actions all || sp_finish
check "the two agents hold disjoint sets of programs" \
	test "$(comm -12 <(progs_of "${SP_AGENT_PID[a]}") <(progs_of "${SP_AGENT_PID[b]}") | wc -l)" -eq 0
check "each holds its programs" test "$(progs_of "${SP_AGENT_PID[b]}" | wc -l)" -gt 0

# one connection with data, seen by both
conn() { # PORT TAG: a served connection; sets CK (client cookie) and SK (server end)
	bg_run "$SP_TMP/srv$2.out" nsx c "$SP_CONN" serve 127.0.0.1 "$1" --count 1 --hold 5 --deadline 20
	local srv=$BG_PID
	wait_for "$SP_TMP/srv$2.out" '^listening' 10 || fail "server $2 did not listen"
	nsx c "$SP_CONN" connect 127.0.0.1 "$1" --send 10 --deadline 10 >"$SP_TMP/cli$2.out"
	wait_pid "$srv" 10
	CK=$(kv "$SP_TMP/cli$2.out" connect cookie)
	SK=$(kv "$SP_TMP/srv$2.out" accepted cookie)
}
trans() { # FILE COOKIE
	jq -r "select(.event.action == \"tcp-state-change\" and $(sock_is "$2"))
		| .sockpulse.old_state + \">\" + .sockpulse.new_state" "$1" | paste -sd' ' -
}
CLIENT="close>syn_sent syn_sent>established established>fin_wait1 fin_wait1>fin_wait2 fin_wait2>close"
SERVER="listen>syn_recv syn_recv>established established>close_wait close_wait>last_ack last_ack>close"

conn 6901 1
for t in a b; do
	L=$(host_agent_log "$t")
	wait_for "$L" "\"sock\":$SK,.*\"old_state\":\"last_ack\"" 5 || fail "agent $t: no last_ack>close of the server end"
	expect_count "agent $t: the connect, once" "$L" \
		".event.action == \"tcp-connect\" and $(sock_is "$CK") and .event.outcome == \"success\"" 1
	check_eq "agent $t: the client's transitions" "$(trans "$L" "$CK")" "$CLIENT"
	check_eq "agent $t: the server end's transitions" "$(trans "$L" "$SK")" "$SERVER"
	check_eq "agent $t: its log's sequence starts at 1" "$(head -n1 "$L" | jq '.event.sequence')" 1
	check "agent $t: scrape" scrape "$t" "$SP_TMP/$t.prom"
	check_eq "agent $t: the connect in /metrics" \
		"$(metric "$SP_TMP/$t.prom" 'sockpulse_tcp_connects_total{outcome="success"}')" 1
done

host_agent_stop a TERM
conn 6902 2
L=$(host_agent_log b)
wait_for "$L" "\"sock\":$SK,.*\"old_state\":\"last_ack\"" 5 || fail "agent b: no last_ack>close after a stopped"
check_eq "agent b after agent a stopped: the client's transitions" "$(trans "$L" "$CK")" "$CLIENT"
check_eq "agent b after agent a stopped: the server end's transitions" "$(trans "$L" "$SK")" "$SERVER"

# a third agent on the metrics address agent b holds
ADDR=$(sed -E 's|^http://([^/]*)/metrics$|\1|' <<<"${SP_METRICS_URL[b]}")
"$SOCKPULSE" agent --netns "$(ns_path c)" --log "$SP_TMP/x/events.jsonl" --metrics "$ADDR" \
	>"$SP_TMP/x.out" 2>"$SP_TMP/x.err" &
XPID=$!
SP_BG_PIDS+=("$XPID")
wait_pid "$XPID" 30
check_eq "an agent on a taken metrics address ($ADDR) exits with status 1" "$WAIT_RC" 1
check "it never said ready" test "$(grep -c "sockpulse: ready:" "$SP_TMP/x.err")" -eq 0
check "its error names the address and the reason" \
	grep -q "metrics: cannot listen on $ADDR: Address already in use" "$SP_TMP/x.err"
log "its stderr: $(tr '\n' '|' <"$SP_TMP/x.err")"
# a fourth agent on the log file agent b writes: two writers would interleave two sequences
"$SOCKPULSE" agent --netns "$(ns_path c)" --log "$L" --metrics off \
	>"$SP_TMP/y.out" 2>"$SP_TMP/y.err" &
YPID=$!
SP_BG_PIDS+=("$YPID")
wait_pid "$YPID" 30
check_eq "an agent on a log file another agent writes exits with status 1" "$WAIT_RC" 1
check "it never said ready" test "$(grep -c "sockpulse: ready:" "$SP_TMP/y.err")" -eq 0
check "its error names the log and says it is locked" \
	grep -q "log $L is locked by another process" "$SP_TMP/y.err"
conn 6903 3
wait_for "$L" "\"sock\":$SK,.*\"old_state\":\"last_ack\"" 5 || fail "agent b: no last_ack>close after the refused start"
check_eq "agent b undisturbed: the client's transitions" "$(trans "$L" "$CK")" "$CLIENT"
check "agent b still serves /metrics" scrape b "$SP_TMP/b2.prom"
check_eq "agent b counted its three connects" \
	"$(metric "$SP_TMP/b2.prom" 'sockpulse_tcp_connects_total{outcome="success"}')" 3
host_agent_stop b TERM
for t in a b; do
	check_eq "agent $t lost nothing" "$(sed -n 's/.*summary: lost \([0-9]*\):.*/\1/p' "$SP_TMP/$t.err")" 0
done
sp_finish
