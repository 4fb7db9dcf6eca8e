#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Lease reconciliation with the socket table: a connection whose end never reached the agent
# (here: its records dropped by a 4 KiB ring that fills while the agent is stopped) is ended as lease-lost with
# event.reason "unobserved" once a socket-table walk no longer finds it, instead of staying
# "alive" until its TTL and then raising a false lease-expired alert.
#   - While the connections are open, walks every second end none of them.
#   - After both ends close while the ring overflows (events-lost lines say so), every
#     leased connection ends exactly once: as its records say when any record of it after
#     ESTABLISHED arrived (a later transition or a reset), as "unobserved" exactly when none did.
#   - No lease-expired line (the TTL is 60 s); none of them is still alive in sockpulse_leases;
#     sockpulse_lease_unobserved_total and the exit summary count the unobserved ends.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"

N=100
PORT=7300

ns_new c
host_agent_start r c --ring-size 4096 --audit-interval 1s --lease-ttl 60s || sp_finish
L=$(host_agent_log r)

# The server accepts all N and keeps them (never reads), then exits at once: its ends close
# together. The client opens them 10 ms apart (little loss while opening), holds, exits at once.
# The client's hold leaves 3 s beyond the 2 s of walks below: in a TCG guest the steps between
# "opened" and the snapshot took more than the 1 s a 3 s hold left.
bg_run "$SP_TMP/srv.out" nsx c "$SP_CONN" serve 127.0.0.1 $PORT --count $N --leak --hold 6 --deadline 30
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "server did not listen"
bg_run "$SP_TMP/fill.out" nsx c "$SP_CONN" fill 127.0.0.1 $PORT --count $N --interval 10 --hold 5 --deadline 30
wait_for "$SP_TMP/fill.out" '^fill opened=' 10 || fail "client did not open its connections"
check_eq "the client opened $N connections" "$(kv "$SP_TMP/fill.out" fill opened)" $N

ON_PORT="(.destination.port == $PORT)"
sleep 2 # two walks or more while they are open (the client holds them 5 s)
cp "$L" "$SP_TMP/open.jsonl"
expect_none "no lease ended while the connections are open and walked" "$SP_TMP/open.jsonl" \
	"$ON_PORT and (.event.action == \"lease-lost\" or .event.action == \"lease-closed\")"

# The agent is stopped while both ends close, so the 4 KiB ring fills with the first records
# and drops the rest: most connections lose every record after ESTABLISHED.
APID=${SP_AGENT_PID[r]}
kill -STOP "$APID"
for ((i = 0; i < 40; i++)); do
	grep -q '^end ' "$SP_TMP/srv.out" 2>/dev/null &&
		[ "$(nsx c ss -Htn state established "( sport = :$PORT or dport = :$PORT )" | wc -l)" -eq 0 ] &&
		break
	sleep 0.25
done
check_eq "both ends closed while the agent was stopped" \
	"$(nsx c ss -Htn state established "( sport = :$PORT or dport = :$PORT )" | wc -l)" 0
kill -CONT "$APID"
sleep 4 # two walks (1 s apart) that no longer find them, with margin
check "scrape after the closes" scrape r "$SP_TMP/end.prom"
host_agent_stop r TERM

LOST=$(jq -s '[.[] | select(.event.action == "events-lost") | .sockpulse.lost.count] | add // 0' "$L")
check "the closing bursts overflowed the ring (records lost: $LOST)" test "$LOST" -gt 0

# per connection (cookie) on the port: did its leaving ESTABLISHED arrive, and how did its
# transport lease end (every lease has one)
jq -s --argjson port $PORT '
	[.[] | select(.destination.port == $port and .sockpulse.sock != null)]
	| group_by(.sockpulse.sock)
	| map({
		sock: .[0].sockpulse.sock,
		leased: any(.[]; (.event.action | startswith("lease-"))
			or (.event.action == "tcp-state-change" and .sockpulse.new_state == "established")),
		left: any(.[]; (.event.action == "tcp-state-change" and (.sockpulse.old_state | IN(
			"established", "fin_wait1", "fin_wait2", "close_wait", "last_ack", "closing")))
			or (.event.action | IN("tcp-reset", "tcp-keepalive-timeout", "tcp-retransmit-timeout"))),
		ends: [.[] | select((.event.action == "lease-closed" or .event.action == "lease-lost")
			and .sockpulse.lease.kind == "transport") | (.event.reason // "closed")]
	})
	| map(select(.leased))' "$L" >"$SP_TMP/conns.json"
LEASED=$(jq length "$SP_TMP/conns.json")
UNOBS=$(jq '[.[] | select(.ends == ["unobserved"])] | length' "$SP_TMP/conns.json")
log "leased connections on :$PORT: $LEASED (both ends), ended unobserved: $UNOBS, records lost: $LOST"
check "the agent leased most of the $((2 * N)) connection ends ($LEASED)" test "$LEASED" -ge "$N"
check_eq "every leased connection ended exactly once" \
	"$(jq '[.[] | select((.ends | length) != 1)] | length' "$SP_TMP/conns.json")" 0
check_eq "ended unobserved exactly those of which no record after ESTABLISHED arrived" \
	"$(jq -c '[.[] | select(.left == (.ends == ["unobserved"]))] | map(.sock)' "$SP_TMP/conns.json")" "[]"
check "some ends were lost, so the reconciliation ran ($UNOBS unobserved)" test "$UNOBS" -gt 0
expect_none "no lease expired (TTL 60 s)" "$L" "$ON_PORT and .event.action == \"lease-expired\""
check_eq "no lease on :$PORT is alive any more (sockpulse_leases alive, transport)" \
	"$(metric "$SP_TMP/end.prom" 'sockpulse_leases{kind="transport",state="alive"}')" 0
check_eq "sockpulse_lease_unobserved_total counts them" \
	"$(metric "$SP_TMP/end.prom" sockpulse_lease_unobserved_total)" "$UNOBS"
check_eq "the exit summary counts them" \
	"$(sed -n 's/.*summary: leases .*(unobserved \([0-9]*\)).*/\1/p' "$SP_TMP/r.err")" "$UNOBS"
sp_finish
