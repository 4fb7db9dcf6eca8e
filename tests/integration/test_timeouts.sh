#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Established connections killed by the kernel after the peer vanished (its veth set down; the
# client's neighbour entries are permanent, so nothing turns into an ICMP "unreachable"), IPv4 and
# IPv6 at once:
#   port 5301: SO_KEEPALIVE with KEEPIDLE=1, KEEPINTVL=1, KEEPCNT=2, idle -> tcp-keepalive-timeout
#              with 2 unanswered probes, ETIMEDOUT, and no retransmission timeout (the kernel
#              also sends a RST as it gives up: a tcp-reset "sent" is expected, nothing received);
#   port 5302: TCP_USER_TIMEOUT=2000 ms, data sent after the peer vanished -> tcp-retransmit-timeout,
#              ETIMEDOUT, and no keepalive timeout.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
ns_new s
link_pair c s 3
agent_start cli c || sp_finish

declare -A SRV=([4]=10.3.0.2 [6]=fd00:3::2)
PIDS=()
for f in 4 6; do
	for port in 5301 5302; do
		bg_run "$SP_TMP/srv$f-$port.out" nsx s "$SP_CONN" serve "${SRV[$f]}" $port --hold 20 --deadline 30
		wait_for "$SP_TMP/srv$f-$port.out" '^listening' 10 || fail "v$f server $port did not listen"
	done
	bg_run "$SP_TMP/ka$f.out" nsx c "$SP_CONN" connect "${SRV[$f]}" 5301 --keepalive 1,1,2 --hold 20 --deadline 30
	PIDS+=("$BG_PID")
	bg_run "$SP_TMP/rto$f.out" nsx c "$SP_CONN" connect "${SRV[$f]}" 5302 --user-timeout 2000 \
		--wait-file "$SP_TMP/go" --send 1000 --hold 20 --deadline 30
	PIDS+=("$BG_PID")
done
for f in 4 6; do
	for s in ka rto; do
		wait_for "$SP_TMP/$s$f.out" '^connect .*result=ok' 10 || fail "v$f $s client did not connect"
	done
	wait_for "$SP_TMP/srv$f-5301.out" '^accepted' 10 || fail "v$f server 5301 did not accept"
	wait_for "$SP_TMP/srv$f-5302.out" '^accepted' 10 || fail "v$f server 5302 did not accept"
done
ip -n "$(ns_name s)" link set v3 down
touch "$SP_TMP/go"
for pid in "${PIDS[@]}"; do
	wait_pid "$pid" 25 || fail "a client did not finish within 25 s"
done
agent_stop cli
C=$(agent_json cli)

for f in 4 6; do
	check_eq "v$f keepalive client's read failed with ETIMEDOUT" "$(kv "$SP_TMP/ka$f.out" end error)" ETIMEDOUT
	check_eq "v$f retransmitting client's read failed with ETIMEDOUT" "$(kv "$SP_TMP/rto$f.out" end error)" ETIMEDOUT

	K=$(kv "$SP_TMP/ka$f.out" connect cookie)
	P=$(kv "$SP_TMP/ka$f.out" connect pid)
	CTX=$(sock_is "$K")
	expect "v$f tcp-keepalive-timeout: 2 probes, ETIMEDOUT, addresses, owner" "$C" "
		.event.action == \"tcp-keepalive-timeout\" and $(sock_is "$K")
		and .sockpulse.keepalive.probes == 2 and .error.code == \"ETIMEDOUT\"
		and .destination.ip == \"${SRV[$f]}\" and .destination.port == 5301
		and .network.direction == \"egress\" and .process.pid == $P and .process.name == \"sp_conn\""
	expect_count "v$f exactly one keepalive timeout for the socket" "$C" \
		".event.action == \"tcp-keepalive-timeout\" and $(sock_is "$K")" 1
	expect_none "v$f keepalive death is not a retransmission timeout" "$C" "
		$(sock_is "$K") and .event.action == \"tcp-retransmit-timeout\""
	# The kernel's keepalive timer sends a RST when it gives up (tcp_keepalive_timer ->
	# tcp_send_active_reset): one reset sent, in established; nothing received.
	expect_none "v$f keepalive death: no reset received" "$C" "
		$(sock_is "$K") and .event.action == \"tcp-reset\" and .sockpulse.reset.direction != \"sent\""
	expect_none "v$f keepalive death: the reset the kernel sends is marked old_state established" "$C" "
		$(sock_is "$K") and .event.action == \"tcp-reset\" and .sockpulse.old_state != \"established\""
	expect "v$f keepalive socket: established>close" "$C" "
		.event.action == \"tcp-state-change\" and $(sock_is "$K")
		and .sockpulse.old_state == \"established\" and .sockpulse.new_state == \"close\""

	K=$(kv "$SP_TMP/rto$f.out" connect cookie)
	P=$(kv "$SP_TMP/rto$f.out" connect pid)
	CTX=$(sock_is "$K")
	expect "v$f tcp-retransmit-timeout: ETIMEDOUT, addresses, owner" "$C" "
		.event.action == \"tcp-retransmit-timeout\" and $(sock_is "$K")
		and .error.code == \"ETIMEDOUT\"
		and .destination.ip == \"${SRV[$f]}\" and .destination.port == 5302
		and .network.direction == \"egress\" and .process.pid == $P and .process.name == \"sp_conn\""
	expect_count "v$f exactly one retransmission timeout for the socket" "$C" \
		".event.action == \"tcp-retransmit-timeout\" and $(sock_is "$K")" 1
	expect_none "v$f retransmission death is not a keepalive timeout nor a reset" "$C" "
		$(sock_is "$K") and (.event.action == \"tcp-keepalive-timeout\" or .event.action == \"tcp-reset\")"
	expect "v$f retransmitting socket: established>close" "$C" "
		.event.action == \"tcp-state-change\" and $(sock_is "$K")
		and .sockpulse.old_state == \"established\" and .sockpulse.new_state == \"close\""
done
unset CTX
sp_finish
