#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Replay of the agent's log, written with the default --log-actions, gives the live run's lease
# verdicts. Three connections under `agent --lease-ttl 2s`, about 5 s each:
#   port 6411, chatty: the server sends 10 bytes every 250 ms for 4 s  -> no verdict;
#   port 6412, keepalive: idle, but the client probes every second     -> no verdict;
#   port 6413, silent: idle, no keepalive                              -> both transport leases
#     suspect, then expire (the control: replay does raise verdicts); the FIN that ends it is
#     no "recovery".
# Then the same log without its tcp-activity lines, as an agent logging without them writes it:
# replay says so in one line on stderr before any output and marks its verdicts untrusted.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
host_agent_start l c --lease-ttl 2s --metrics off || sp_finish
for p in 6411 6412 6413; do
	case $p in
	6411) sargs=(--chunks 16,10,250 --hold 1) cargs=() ;;
	6412) sargs=(--hold 5) cargs=(--keepalive 1,1,5) ;;
	6413) sargs=(--hold 5) cargs=() ;;
	esac
	bg_run "$SP_TMP/srv$p.out" nsx c "$SP_CONN" serve 127.0.0.1 $p --count 1 "${sargs[@]}" \
		--deadline 20
	wait_for "$SP_TMP/srv$p.out" '^listening' 10 || fail "server $p did not listen"
	bg_run "$SP_TMP/cli$p.out" nsx c "$SP_CONN" connect 127.0.0.1 $p "${cargs[@]}" --hold 6 \
		--deadline 20
	eval "CLI$p=\$BG_PID"
done
for p in 6411 6412 6413; do
	pid=CLI$p
	wait_pid "${!pid}" 20 || fail "client $p did not finish"
done
host_agent_stop l
LOG=$(host_agent_log l)

# The verdicts that depend on renewals, as "sock action kind" lines, sorted.
verdicts() {
	jq -r 'select(.event.action | test("^lease-(suspect|expired|recovered)$"))
		| "\(.sockpulse.sock) \(.event.action) \(.sockpulse.lease.kind)"' "$1" | sort
}
on_port() { jq -r "select(.event.action == \"lease-expired\" and .destination.port == $2)
	| .sockpulse.sock" "$1" | sort -u | wc -l; }

check "the default log carries tcp-activity lines" \
	[ "$(count "$LOG" '.event.action == "tcp-activity"')" -gt 0 ]
check_eq "live: the silent connection's two transport leases expired" "$(on_port "$LOG" 6413)" 2
check_eq "live: no verdict on the chatty connection" "$(on_port "$LOG" 6411)" 0
check_eq "live: no verdict on the keepalive connection" "$(on_port "$LOG" 6412)" 0
check_eq "live: the silent connection is not 'recovered' by the FIN that closes it" \
	"$(count "$LOG" '.event.action == "lease-recovered" and .destination.port == 6413')" 0

"$SOCKPULSE" replay --json --lease-ttl 2s "$LOG" >"$SP_TMP/replay.json" 2>"$SP_TMP/replay.err"
check_eq "replay exits 0" "$?" 0
check_eq "replay: the same lease verdicts as live" "$(verdicts "$SP_TMP/replay.json")" \
	"$(verdicts "$LOG")"
check "replay of a complete log does not warn" [ ! -s "$SP_TMP/replay.err" ]
check_eq "replay of a complete log marks nothing untrusted" \
	"$(count "$SP_TMP/replay.json" '.sockpulse.lease.untrusted')" 0

# The same log as an agent that leaves tcp-activity out writes it, replayed from a pipe.
jq -c 'select(.event.action != "tcp-activity")' "$LOG" >"$SP_TMP/thin.jsonl"
"$SOCKPULSE" replay --json --lease-ttl 2s - <"$SP_TMP/thin.jsonl" >"$SP_TMP/thin.json" \
	2>"$SP_TMP/thin.err"
check_eq "replay of a log without activity exits 0" "$?" 0
check_eq "it says so in one line" "$(grep -c 'no tcp-activity line' "$SP_TMP/thin.err")" 1
VERDICT='.event.action | test("^lease-(suspect|expired|recovered)$")'
n=$(count "$SP_TMP/thin.json" "$VERDICT")
check "it raises verdicts for want of renewals ($n)" [ "$n" -gt 0 ]
check_eq "every one of them is marked untrusted" \
	"$(count "$SP_TMP/thin.json" "$VERDICT")" \
	"$(count "$SP_TMP/thin.json" '.sockpulse.lease.untrusted == true')"
check_eq "no closed or lost line is marked" \
	"$(count "$SP_TMP/thin.json" '(.event.action | IN("lease-closed", "lease-lost"))
		and .sockpulse.lease.untrusted')" 0
sp_finish
