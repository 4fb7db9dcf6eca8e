#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The engine on real traffic (leases with a 3 s TTL), then replay of what was recorded:
#   port 5401, zombie: the server sends three chunks, then its application goes quiet while its
#     kernel keeps answering the client's keepalive probes -> the client's payload lease expires,
#     its transport lease never does;
#   port 5402, vanished peer: the server's veth goes down under an idle keepalive connection ->
#     transport lease expired, then lease-lost with reason keepalive-timeout;
#   port 5403, refused burst: ~25 refused connects a second for 4 s to a port with no listener ->
#     connect-failure-spike start for that destination only; a destination that accepts the same
#     rate of connects (port 5404) raises nothing;
#   port 5406, vanished peer older than the agent: 5402 with the connection made before the
#     agent starts: lease-lost keepalive-timeout all the same, its lease lines naming the client
#     and saying egress to the service;
#   replay of the agent's own log with the same flags gives the same lease and spike lines (but
#     for 5406's: replay cannot know a connection the live run found in the socket table).
. "$(dirname "$0")/lib.sh"
sp_require_bpf

TTL=3s
ns_new c
ns_new s
ns_new z
link_pair c s 4
link_pair c z 5
# The connection older than the agent must outlive the agent's start, however slow (the link goes
# down once it is up, and keepalive ends the hold 7 s later): long holds, ended by the timeout.
bg_run "$SP_TMP/psrv.out" nsx z "$SP_CONN" serve 10.5.0.2 5406 --hold 60 --deadline 70
wait_for "$SP_TMP/psrv.out" '^listening' 10 || fail "early vanishing server did not listen"
bg_run "$SP_TMP/pcli.out" nsx c "$SP_CONN" connect 10.5.0.2 5406 --keepalive 4,1,3 --hold 60 --deadline 70
PPID_CLI=$BG_PID
wait_for "$SP_TMP/psrv.out" '^accepted' 10 || fail "early vanishing server did not accept"
agent_start eng c --lease-ttl $TTL || sp_finish

bg_run "$SP_TMP/zsrv.out" nsx s "$SP_CONN" serve 10.4.0.2 5401 --chunks 3,100,300 --hold 12 --deadline 20
wait_for "$SP_TMP/zsrv.out" '^listening' 10 || fail "zombie server did not listen"
bg_run "$SP_TMP/zcli.out" nsx c "$SP_CONN" connect 10.4.0.2 5401 --keepalive 1,1,5 --hold 10 --deadline 20
ZPID=$BG_PID
bg_run "$SP_TMP/vsrv.out" nsx z "$SP_CONN" serve 10.5.0.2 5402 --hold 20 --deadline 25
wait_for "$SP_TMP/vsrv.out" '^listening' 10 || fail "vanishing server did not listen"
bg_run "$SP_TMP/vcli.out" nsx c "$SP_CONN" connect 10.5.0.2 5402 --keepalive 4,1,3 --hold 20 --deadline 25
VPID=$BG_PID
wait_for "$SP_TMP/zcli.out" '^connect .*result=ok' 10 || fail "zombie client did not connect"
wait_for "$SP_TMP/vcli.out" '^connect .*result=ok' 10 || fail "vanishing client did not connect"
wait_for "$SP_TMP/vsrv.out" '^accepted' 10 || fail "vanishing server did not accept"
ip -n "$(ns_name z)" link set v5 down

# Refused connects to 10.4.0.2:5403 (no listener), accepted ones to 10.4.0.2:5404.
# The accepting server lives until the test stops it: a TCG guest took 75 s for these 200
# connects, and a server gone at a 20 s deadline turned 5404 into a refused destination.
bg_run "$SP_TMP/okserv.out" nsx s "$SP_CONN" serve 10.4.0.2 5404 --count 200 --deadline 150
wait_for "$SP_TMP/okserv.out" '^listening' 10 || fail "accepting server did not listen"
for ((sec = 0; sec < 4; sec++)); do
	for ((i = 0; i < 25; i++)); do
		nsx c "$SP_CONN" connect 10.4.0.2 5403 --timeout 2 >/dev/null 2>&1
		nsx c "$SP_CONN" connect 10.4.0.2 5404 --timeout 2 >/dev/null 2>&1
	done
	sleep 0.3
done
kill -TERM "$(kv "$SP_TMP/okserv.out" listening pid)" 2>/dev/null

wait_pid "$ZPID" 20 || fail "zombie client did not finish"
wait_pid "$VPID" 25 || fail "vanishing client did not finish"
wait_pid "$PPID_CLI" 25 || fail "early vanishing client did not finish"
agent_stop eng
E=$(agent_json eng)

# Zombie: payload expired, transport alive all along.
K=$(kv "$SP_TMP/zcli.out" connect cookie)
CTX=".sockpulse.sock == $K"
expect "zombie: payload lease expired" "$E" "
	.event.action == \"lease-expired\" and $(sock_is "$K") and .sockpulse.lease.kind == \"payload\"
	and .event.kind == \"alert\" and .sockpulse.lease.ttl_ms == 3000
	and .sockpulse.lease.silent_ms >= 3000 and .destination.port == 5401"
expect_none "zombie: transport lease never expired (keepalive ACKs renew it)" "$E" "
	.event.action == \"lease-expired\" and $(sock_is "$K") and .sockpulse.lease.kind == \"transport\""
expect_count "zombie: one payload expiry, not repeated while it holds" "$E" "
	.event.action == \"lease-expired\" and $(sock_is "$K") and .sockpulse.lease.kind == \"payload\"" 1

# Vanished peer: transport expired first, then lost by keepalive timeout.
K=$(kv "$SP_TMP/vcli.out" connect cookie)
CTX=".sockpulse.sock == $K"
expect "vanished peer: transport lease expired" "$E" "
	.event.action == \"lease-expired\" and $(sock_is "$K") and .sockpulse.lease.kind == \"transport\""
expect "vanished peer: lease lost by keepalive timeout" "$E" "
	.event.action == \"lease-lost\" and $(sock_is "$K") and .sockpulse.lease.kind == \"transport\"
	and .event.reason == \"keepalive-timeout\""
check "vanished peer: expiry comes before the loss" test "$(jq -r "select($(sock_is "$K") and
	(.event.action == \"lease-expired\" or .event.action == \"lease-lost\")) | .event.action" "$E" |
	tr '\n' ' ')" = "lease-expired lease-lost "

# Vanished peer, connection older than the agent: lost the same way, lines naming the client.
K=$(kv "$SP_TMP/pcli.out" connect cookie)
P=$(kv "$SP_TMP/pcli.out" connect pid)
CTX=".sockpulse.sock == $K"
check_eq "early vanished peer: the client's connection died by keepalive" \
	"$(kv "$SP_TMP/pcli.out" end error)" ETIMEDOUT
expect "early vanished peer: lease lost by keepalive timeout, owner $P, egress to 10.5.0.2:5406" "$E" "
	.event.action == \"lease-lost\" and $(sock_is "$K") and .sockpulse.lease.kind == \"transport\"
	and .event.reason == \"keepalive-timeout\" and .process.pid == $P and .process.name == \"sp_conn\"
	and .network.direction == \"egress\" and .destination.ip == \"10.5.0.2\" and .destination.port == 5406"
expect_none "early vanished peer: every line names the client $P and says egress to 5406" "$E" "
	$(sock_is "$K") and (.process.pid != $P or .network.direction != \"egress\"
	or .destination.port != 5406)"
# and the connections made after the start: their lease lines name the client too
for t in zcli vcli; do
	k=$(kv "$SP_TMP/$t.out" connect cookie)
	expect_none "$t: every lease line names the client" "$E" "
		(.event.action | startswith(\"lease-\")) and $(sock_is "$k")
		and .process.pid != $(kv "$SP_TMP/$t.out" connect pid)"
done

# Spike: the refused destination only.
CTX='.event.action == "connect-failure-spike" or (.event.action == "tcp-connect" and .event.outcome == "failure")'
expect "refused burst: spike start for 10.4.0.2:5403" "$E" "
	.event.action == \"connect-failure-spike\" and .event.type == [\"start\"]
	and .event.kind == \"alert\" and .destination.ip == \"10.4.0.2\" and .destination.port == 5403
	and .sockpulse.spike.failures >= 5"
expect_count "refused burst: one incident, not one per second" "$E" "
	.event.action == \"connect-failure-spike\" and .event.type == [\"start\"]" 1
expect_none "accepting destination raises no spike" "$E" "
	.event.action == \"connect-failure-spike\" and .destination.port == 5404"

# Replay: the same lease and spike lines from the recorded log.
PRE=$(kv "$SP_TMP/pcli.out" connect cookie)
SELECT='select(.event.action | test("^(lease-(suspect|expired|recovered|closed|lost)|connect-failure-spike)$"))
	| select(.sockpulse.sock != '"${PRE:-0}"')
	| [.event.action, .sockpulse.sock, .sockpulse.lease.kind, .event.reason, .destination.ip,
	   .destination.port, (.event.type // [] | join(","))] | @json'
"$SOCKPULSE" replay --json --lease-ttl $TTL "$E" >"$SP_TMP/replay.json" 2>"$SP_TMP/replay.err"
check_eq "replay exits 0" "$?" 0
jq -r "$SELECT" "$E" | sort >"$SP_TMP/live.keys"
jq -r "$SELECT" "$SP_TMP/replay.json" | sort >"$SP_TMP/replay.keys"
check "live run produced engine lines to compare" test -s "$SP_TMP/live.keys"
if ! cmp -s "$SP_TMP/live.keys" "$SP_TMP/replay.keys"; then
	fail "replay differs from the live lease/spike lines:"
	diff "$SP_TMP/live.keys" "$SP_TMP/replay.keys" | head -n 10 | sed 's/^/    /'
else
	pass_check "replay reproduces $(wc -l <"$SP_TMP/live.keys") lease/spike lines"
fi
"$SOCKPULSE" replay --json --lease-ttl $TTL "$E" >"$SP_TMP/replay2.json" 2>/dev/null
check "replaying twice gives byte-identical output" cmp -s "$SP_TMP/replay.json" "$SP_TMP/replay2.json"
sp_finish
