#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Fault: the ring filled on purpose, and what comes after. test_lost.sh shows that `watch` counts
# every record of an overflowing burst (lines + lost = made). This one runs `sockpulse agent`
# (log, /metrics) on the same tiny ring (--ring-size 4096) and adds:
#   - exactness against the kernel itself: the agent's stats map (per-CPU drop counters, read with
#     bpftool while the agent runs) = the sum of events-lost lines in the log =
#     sockpulse_events_lost_total = the exit summary's "lost", per kind and in total;
#   - recovery: after the burst, one new connection is reported completely (the connect, every
#     transition of both ends, in order, once), with no further loss.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v bpftool >/dev/null || skip "bpftool not installed"
command -v curl >/dev/null || skip "curl not installed"

N=1500
KINDS=(state connect keepalive-timeout retransmit-timeout reset activity) # index = record type - 1

ns_new c
host_agent_start r c --ring-size 4096 --log-actions all || sp_finish
PID=${SP_AGENT_PID[r]}
L=$(host_agent_log r)

# the agent's per-CPU drop counters: its map named "stats", found among the maps it holds
STATS=$({ grep -h '^map_id:' /proc/"$PID"/fdinfo/* 2>/dev/null || true; } | awk '{ print $2 }' |
	sort -un | while read -r id; do
		bpftool map show id "$id" --json | jq -r 'select(.name == "stats") | .id'
	done | head -n1)
check "found the agent's stats map (id ${STATS:-none})" test -n "$STATS"
# kernel_dropped [KIND]: drops summed over CPUs, of one kind or all
kernel_dropped() {
	local idx=all i
	for i in "${!KINDS[@]}"; do
		[ "${1:-}" != "${KINDS[$i]}" ] || idx=$((i + 1))
	done
	bpftool map dump id "$STATS" --json | jq --arg idx "$idx" '[.[0].formatted.values[].value.dropped
		| if $idx == "all" then add else .[$idx | tonumber] end] | add'
}
log_lost() { # [KIND]
	jq -s --arg k "${1:-}" '[.[] | select(.event.action == "events-lost" and ($k == "" or .sockpulse.lost.kind == $k))
		| .sockpulse.lost.count] | add // 0' "$L"
}
metrics_lost() { # [KIND]
	awk -v k="${1:-}" '$1 ~ /^sockpulse_events_lost_total\{/ && (k == "" || index($1, "kind=\"" k "\"")) { s += $2 }
		END { print s + 0 }' "$SP_TMP/r.prom"
}
check_eq "no drops before the burst" "$(kernel_dropped)" 0

bg_run "$SP_TMP/burst.out" nsx c "$SP_CONN" burst 127.0.0.1 5811 --count $N --deadline 60
wait_pid "$BG_PID" 60
check_eq "burst of $N connections completed" "$(kv "$SP_TMP/burst.out" burst count),$(kv "$SP_TMP/burst.out" burst failed)" "$N,0"
K=$(kernel_dropped)
check "the tiny ring overflowed: the kernel counted ${K:-no} drops" test "${K:-0}" -gt 0
# the agent reads the counters once a second: wait until its lines caught up
for ((i = 0; i < 50; i++)); do
	[ "$(log_lost)" = "$K" ] && break
	sleep 0.1
done
check "scrape" scrape r "$SP_TMP/r.prom"
check_eq "events-lost lines sum to the kernel's drop counters" "$(log_lost)" "$K"
check_eq "sockpulse_events_lost_total = the kernel's drop counters" "$(metrics_lost)" "$K"
expect "the loss held lease verdicts (lease-hold, reason events-lost)" "$L" \
	'.event.action == "lease-hold" and .event.reason == "events-lost"'
for k in "${KINDS[@]}"; do
	kk=$(kernel_dropped "$k")
	check_eq "lost $k: kernel = events-lost lines = metrics" "$(log_lost "$k"),$(metrics_lost "$k")" "$kk,$kk"
done

# recovery: one connection, reported whole
sleep 1
LINES0=$(wc -l <"$L")
bg_run "$SP_TMP/srv.out" nsx c "$SP_CONN" serve 127.0.0.1 5812 --count 1 --hold 5 --deadline 20
SRV=$BG_PID
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "server did not listen"
nsx c "$SP_CONN" connect 127.0.0.1 5812 --send 10 --deadline 10 >"$SP_TMP/cli.out"
wait_pid "$SRV" 10
CK=$(kv "$SP_TMP/cli.out" connect cookie)
SK=$(kv "$SP_TMP/srv.out" accepted cookie)
LK=$(kv "$SP_TMP/srv.out" listening cookie)
check_eq "server saw the client's 10 bytes and its close" "$(kv "$SP_TMP/srv.out" end reason),$(kv "$SP_TMP/srv.out" end bytes_received)" "eof,10"
wait_for "$L" "\"old_state\":\"last_ack\",\"new_state\":\"close\"" 5 ||
	fail "no last_ack>close line within 5 s"
sleep 1.5 # one more read of the drop counters
tail -n +$((LINES0 + 1)) "$L" >"$SP_TMP/after.jsonl"
A=$SP_TMP/after.jsonl
CTX="$(sock_is "$CK") or $(sock_is "$SK") or $(sock_is "$LK") or .event.action == \"events-lost\""
check_eq "no drop in the kernel after the burst" "$(kernel_dropped)" "$K"
expect_none "no events-lost line after the burst" "$A" '.event.action == "events-lost"'
expect_count "the new connection's connect, ok, once" "$A" \
	".event.action == \"tcp-connect\" and $(sock_is "$CK") and .event.outcome == \"success\"" 1
trans() { # COOKIE: its transitions in order, "old>new" joined by spaces
	jq -r "select(.event.action == \"tcp-state-change\" and $(sock_is "$1"))
		| .sockpulse.old_state + \">\" + .sockpulse.new_state" "$A" | paste -sd' ' -
}
check_eq "the listener: close>listen, then listen>close" "$(trans "$LK")" "close>listen listen>close"
check_eq "the client: every transition, in order, once" "$(trans "$CK")" \
	"close>syn_sent syn_sent>established established>fin_wait1 fin_wait1>fin_wait2 fin_wait2>close"
check_eq "the server's end: every transition, in order, once" "$(trans "$SK")" \
	"listen>syn_recv syn_recv>established established>close_wait close_wait>last_ack last_ack>close"

host_agent_stop r TERM
E=$SP_TMP/r.err
SUM=$(sed -n 's/.*summary: lost \([0-9]*\):.*/\1/p' "$E")
check_eq "the exit summary's lost total = the kernel's drop counters" "${SUM:-none}" "$K"
for k in "${KINDS[@]}"; do
	check_eq "summary lost $k = events-lost lines" \
		"$(grep -m1 'summary: lost ' "$E" | tr ' ' '\n' | sed -n "s/^$k=//p")" "$(log_lost "$k")"
done
sp_finish
