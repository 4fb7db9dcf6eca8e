#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Connects that fail, over IPv4 and IPv6, each classified with its errno:
#   refused      no listener on the peer: RST to the SYN (and a tcp-reset received line)
#   timeout      the SYN is blackholed (a blackhole route on the peer drops it silently), TCP_SYNCNT=1
#   unreachable  the peer routes the destination to "unreachable": ICMP back to the client
#   local        connect() itself fails: no route (ENETUNREACH), 4-tuple taken (EADDRNOTAVAIL)
#   canceled     a non-blocking connect closed while the SYN is still unanswered
# The client namespace c is watched; the "router" r answers, refuses, drops or sends ICMP.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
ns_new r
link_pair c r 2
# r: forwards, blackholes 10.9/fd00:9 (silent drop), answers 10.8/fd00:8 with ICMP unreachable.
nsx r sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$(ns_name r)" route add blackhole 10.9.0.0/24
ip -n "$(ns_name r)" -6 route add blackhole fd00:9::/64
ip -n "$(ns_name r)" route add unreachable 10.8.0.0/24
ip -n "$(ns_name r)" -6 route add unreachable fd00:8::/64
for p in 8 9; do
	ip -n "$(ns_name c)" route add "10.$p.0.0/24" via 10.2.0.2
	ip -n "$(ns_name c)" -6 route add "fd00:$p::/64" via fd00:2::2
done

agent_start cli c || sp_finish

declare -A PEER=([4]=10.2.0.2 [6]=fd00:2::2) SELF=([4]=10.2.0.1 [6]=fd00:2::1)
declare -A SINK=([4]=10.9.0.1 [6]=fd00:9::1) UNREACH=([4]=10.8.0.1 [6]=fd00:8::1)
declare -A NOROUTE=([4]=10.7.0.1 [6]=fd00:7::1) TYPE=([4]=ipv4 [6]=ipv6)
PIDS=()
run() { # NAME ARGS...: sp_conn in c, output to NAME.out
	local name=$1
	shift
	bg_run "$SP_TMP/$name.out" nsx c "$SP_CONN" "$@" --deadline 30
	PIDS+=("$BG_PID")
}

for f in 4 6; do
	run "refused$f" connect "${PEER[$f]}" 5201
	run "timeout$f" connect "${SINK[$f]}" 5202 --syncnt 1
	run "unreach$f" connect "${UNREACH[$f]}" 5203
	run "noroute$f" connect "${NOROUTE[$f]}" 5204
	run "cancel$f" connect "${SINK[$f]}" 5205 --nonblock --timeout 1
	# EADDRNOTAVAIL: a second socket bound to the same local address and port connecting to the
	# same destination finds the 4-tuple taken.
	# The first holds its connection long enough for the second to start even under qemu's TCG
	# (it took over 2 s there).
	bg_run "$SP_TMP/holdsrv$f.out" nsx r "$SP_CONN" serve "${PEER[$f]}" 5206 --hold 12 --deadline 30
	wait_for "$SP_TMP/holdsrv$f.out" '^listening' 10 || fail "v$f hold server did not listen"
	run "hold$f" connect "${PEER[$f]}" 5206 --bind "${SELF[$f]}" --bind-port 4100$f --reuseaddr --hold 6
	wait_for "$SP_TMP/hold$f.out" '^connect' 10 || fail "v$f first bound connect did not finish"
	run "inuse$f" connect "${PEER[$f]}" 5206 --bind "${SELF[$f]}" --bind-port 4100$f --reuseaddr
done
for pid in "${PIDS[@]}"; do
	wait_pid "$pid" 30 || fail "a client did not finish within 30 s"
done
agent_stop cli
C=$(agent_json cli)

# connect_failed NAME FAMILY CLASS ERRNO_REGEX DEST PORT [SOURCE]: the tcp-connect line of NAME's
# socket; SOURCE: its source.ip (the address the SYN left from, though the kernel clears it from
# a socket whose connect() failed before the call returns)
connect_failed() {
	local name=$1 f=$2 class=$3 errre=$4 dest=$5 port=$6 src=${7:-} o K P E
	o=$SP_TMP/$name.out
	K=$(kv "$o" connect cookie)
	P=$(kv "$o" connect pid)
	E=$(kv "$o" connect result)
	[ -n "$K" ] || { fail "$name: sp_conn printed no connect line: $(cat "$o")"; return; }
	check "$name: the client's connect() reported $errre (got $E)" grep -Eq "^($errre)\$" <<<"$E"
	CTX=$(sock_is "$K")
	expect "$name: tcp-connect failure $class, error.code $E, destination $dest:$port, owner" "$C" "
		.event.action == \"tcp-connect\" and $(sock_is "$K")
		and .event.outcome == \"failure\" and .sockpulse.failure == \"$class\"
		and .error.code == \"$E\"
		and .destination.ip == \"$dest\" and .destination.port == $port
		and .network.type == \"${TYPE[$f]}\" and .network.direction == \"egress\"
		and .process.pid == $P and .process.name == \"sp_conn\""
	[ -z "$src" ] || expect "$name: tcp-connect source.ip $src" "$C" "
		.event.action == \"tcp-connect\" and $(sock_is "$K") and .source.ip == \"$src\""
	expect_count "$name: exactly one tcp-connect for the socket" "$C" \
		".event.action == \"tcp-connect\" and $(sock_is "$K")" 1
	expect_none "$name: no connect success, no established state" "$C" "
		$(sock_is "$K") and (.event.outcome == \"success\" or .sockpulse.new_state == \"established\")"
}

for f in 4 6; do
	connect_failed "refused$f" $f refused ECONNREFUSED "${PEER[$f]}" 5201 "${SELF[$f]}"
	K=$(kv "$SP_TMP/refused$f.out" connect cookie)
	expect "refused$f: tcp-reset received in syn_sent" "$C" "
		.event.action == \"tcp-reset\" and $(sock_is "$K")
		and .sockpulse.reset.direction == \"received\" and .sockpulse.old_state == \"syn_sent\""
	expect "refused$f: syn_sent>close" "$C" "
		.event.action == \"tcp-state-change\" and $(sock_is "$K")
		and .sockpulse.old_state == \"syn_sent\" and .sockpulse.new_state == \"close\""

	connect_failed "timeout$f" $f timeout ETIMEDOUT "${SINK[$f]}" 5202 "${SELF[$f]}"
	K=$(kv "$SP_TMP/timeout$f.out" connect cookie)
	# TCP_SYNCNT=1: the kernel gives up after the SYN and one retransmission (about 3 s); a
	# generous lower bound proves the duration is the connect's, not some other interval.
	expect "timeout$f: event.duration covers the SYN retransmission (> 1 s)" "$C" "
		.event.action == \"tcp-connect\" and $(sock_is "$K") and .event.duration > 1000000000"
	expect_none "timeout$f: no reset on a silent drop" "$C" ".event.action == \"tcp-reset\" and $(sock_is "$K")"

	connect_failed "unreach$f" $f unreachable 'EHOSTUNREACH|ENETUNREACH' "${UNREACH[$f]}" 5203 \
		"${SELF[$f]}"
	connect_failed "noroute$f" $f local ENETUNREACH "${NOROUTE[$f]}" 5204
	check_eq "inuse$f: the first bound connection was up" "$(kv "$SP_TMP/hold$f.out" connect result)" ok
	connect_failed "inuse$f" $f local EADDRNOTAVAIL "${PEER[$f]}" 5206 "${SELF[$f]}"

	K=$(kv "$SP_TMP/cancel$f.out" connect cookie)
	check_eq "cancel$f: still connecting when sp_conn gave up" "$(kv "$SP_TMP/cancel$f.out" connect result)" EINPROGRESS
	CTX=$(sock_is "$K")
	expect "cancel$f: tcp-connect failure canceled" "$C" "
		.event.action == \"tcp-connect\" and $(sock_is "$K")
		and .event.outcome == \"failure\" and .sockpulse.failure == \"canceled\"
		and .destination.ip == \"${SINK[$f]}\" and .destination.port == 5205"
	expect_count "cancel$f: exactly one tcp-connect for the socket" "$C" \
		".event.action == \"tcp-connect\" and $(sock_is "$K")" 1
done
unset CTX
expect_none "no tcp-connect success at all except the two bound holders" "$C" "
	.event.action == \"tcp-connect\" and .event.outcome == \"success\" and .destination.port != 5206"

sp_finish
