#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# A successful connection over IPv4 and IPv6, client in one namespace and server in another, one
# agent watching each side. Asserts the tcp-connect line (outcome, latency, addresses, direction,
# owner pid/comm), the client's and the server's transitions (with the TIME_WAIT hand-over marked
# on the active closer's last line), the owner on the accepted socket (over IPv6 a prefork server:
# a child, comm sp_worker, accepts on its parent's listener), and that the transitions
# are exactly the kernel's: the same old->new pairs and counts libbpf-tools tcpstates shows for
# the same sockets.
# The same pair of connections also runs with the workload started before the agents (ports
# 5103/5104: listening, connected and accepted before, closed after the start): only their ends
# are seen, and each end's lines must name its owner (the client, the acceptor) and agree on
# direction and on which end is the destination.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
ns_new s
link_pair c s 1

TCPSTATES=""
if [ -x /usr/sbin/tcpstates ] && command -v stdbuf >/dev/null; then
	TCPSTATES=/usr/sbin/tcpstates
	bg_run "$SP_TMP/tcpstates.out" stdbuf -oL "$TCPSTATES" -w
	TS_PID=$BG_PID
	wait_for "$SP_TMP/tcpstates.out" '^SKADDR' 30 || fail "tcpstates did not start"
else
	log "no /usr/sbin/tcpstates (Debian libbpf-tools): the comparison with the kernel's own view is skipped"
fi

declare -A SRV_IP=([4]=10.1.0.2 [6]=fd00:1::2) CLI_IP=([4]=10.1.0.1 [6]=fd00:1::1)
declare -A PORT=([4]=5101 [6]=5102) PRE_PORT=([4]=5103 [6]=5104) TYPE=([4]=ipv4 [6]=ipv6)

declare -A FORK=([4]="" [6]=--fork-accept) WORKER=([4]=sp_conn [6]=sp_worker)

# Started before the agents: connected and accepted, closed (client first) once $GO exists. Their
# deadline covers the wait: tcpstates and two agents took over 30 s to start in the cloud guest
# under TCG, and a helper that gives up closes on its own, in its own order.
GO=$SP_TMP/go
PRE_PIDS=()
for f in 4 6; do
	# shellcheck disable=SC2086 # FORK is one flag or nothing
	bg_run "$SP_TMP/preserve$f.out" nsx s "$SP_CONN" serve "${SRV_IP[$f]}" "${PRE_PORT[$f]}" ${FORK[$f]} --wait-file "$GO" --hold 5 --deadline 90
	PRE_PIDS+=("$BG_PID")
	wait_for "$SP_TMP/preserve$f.out" '^listening' 10 || fail "pre server v$f did not listen"
	bg_run "$SP_TMP/preconn$f.out" nsx c "$SP_CONN" connect "${SRV_IP[$f]}" "${PRE_PORT[$f]}" --wait-file "$GO" --send 100 --hold 0.3 --deadline 90
	PRE_PIDS+=("$BG_PID")
	wait_for "$SP_TMP/preserve$f.out" '^accepted' 10 || fail "pre server v$f did not accept"
done

agent_start cli c || sp_finish
agent_start srv s || sp_finish

for f in 4 6; do
	# shellcheck disable=SC2086 # FORK is one flag or nothing
	bg_run "$SP_TMP/serve$f.out" nsx s "$SP_CONN" serve "${SRV_IP[$f]}" "${PORT[$f]}" ${FORK[$f]} --hold 5 --deadline 20
	eval "SERVE_PID$f=$BG_PID"
	wait_for "$SP_TMP/serve$f.out" '^listening' 10 || fail "server v$f did not listen"
done
# The client sends 100 bytes, waits 0.3 s, closes first: it is the active closer (TIME_WAIT).
for f in 4 6; do
	bg_run "$SP_TMP/conn$f.out" nsx c "$SP_CONN" connect "${SRV_IP[$f]}" "${PORT[$f]}" --send 100 --hold 0.3 --deadline 20
	eval "CONN_PID$f=$BG_PID"
done
touch "$GO"
for pid in "${PRE_PIDS[@]}"; do
	wait_pid "$pid" 20 || fail "a helper started before the agents did not finish within 20 s"
done
for f in 4 6; do
	eval "wait_pid \$CONN_PID$f 20"
	check_eq "v$f client exit status" "$WAIT_RC" 0
	eval "wait_pid \$SERVE_PID$f 20"
	check_eq "v$f server exit status" "$WAIT_RC" 0
	check_eq "v$f server saw the client's bytes then EOF" "$(kv "$SP_TMP/serve$f.out" end reason),$(kv "$SP_TMP/serve$f.out" end bytes_received)" "eof,100"
done

agent_stop cli
agent_stop srv
if [ -n "$TCPSTATES" ]; then
	kill -INT "$TS_PID"
	wait_pid "$TS_PID" 10
fi

C=$(agent_json cli)
S=$(agent_json srv)
NS_C=$(ns_inode c)
NS_S=$(ns_inode s)

for f in 4 6; do
	o=$SP_TMP/conn$f.out
	so=$SP_TMP/serve$f.out
	K=$(kv "$o" connect cookie)
	P=$(kv "$o" connect pid)
	LP=$(kv "$o" connect lport)
	KS=$(kv "$so" accepted cookie)
	KL=$(kv "$so" listening cookie)
	PS=$(kv "$so" accepted pid)
	PL=$(kv "$so" listening pid)
	W=${WORKER[$f]}
	check_eq "v$f sp_conn connected" "$(kv "$o" connect result)" ok
	[ -n "$K" ] && [ -n "$KS" ] || { fail "v$f: no cookies from sp_conn"; continue; }
	sip=${SRV_IP[$f]} cip=${CLI_IP[$f]} port=${PORT[$f]} type=${TYPE[$f]}

	# --- client side: the connect outcome
	CTX="$(sock_is "$K")"
	expect "v$f tcp-connect success with latency, addresses, direction, owner" "$C" "
		.event.action == \"tcp-connect\" and $(sock_is "$K")
		and .event.outcome == \"success\" and .event.duration > 0
		and .destination.ip == \"$sip\" and .destination.port == $port
		and .source.ip == \"$cip\" and .source.port == $LP
		and .network.type == \"$type\" and .network.transport == \"tcp\"
		and .network.direction == \"egress\"
		and .process.pid == $P and .process.name == \"sp_conn\"
		and .sockpulse.netns == $NS_C
		and (has(\"error\") | not) and (.sockpulse | has(\"failure\") | not)"
	expect_count "v$f exactly one tcp-connect for the socket" "$C" \
		".event.action == \"tcp-connect\" and $(sock_is "$K")" 1

	# --- client side: transitions, in order, same cookie
	pairs=$(jq -r "select(.event.action == \"tcp-state-change\" and $(sock_is "$K")) |
		\"\(.sockpulse.old_state)>\(.sockpulse.new_state)\"" "$C" | tr '\n' ' ')
	check "v$f client transitions start close>syn_sent syn_sent>established ... end fin_wait2|closing>close: got: $pairs" \
		grep -Eq '^close>syn_sent syn_sent>established established>fin_wait1 (.* )?(fin_wait2|closing)>close $' <<<"$pairs"
	expect "v$f active closer's last transition carries sockpulse.time_wait true" "$C" "
		.event.action == \"tcp-state-change\" and $(sock_is "$K")
		and (.sockpulse.old_state == \"fin_wait2\" or .sockpulse.old_state == \"closing\")
		and .sockpulse.new_state == \"close\" and .sockpulse.time_wait == true"
	expect_none "v$f no invented time_wait state on the client" "$C" "
		$(sock_is "$K") and (.sockpulse.new_state == \"time_wait\" or .sockpulse.old_state == \"time_wait\")"
	expect_none "v$f only the TIME_WAIT hand-over carries time_wait" "$C" "
		$(sock_is "$K") and .sockpulse.time_wait == true and .sockpulse.new_state != \"close\""
	expect "v$f syn_sent>established carries event.duration > 0" "$C" "
		.event.action == \"tcp-state-change\" and $(sock_is "$K")
		and .sockpulse.old_state == \"syn_sent\" and .sockpulse.new_state == \"established\"
		and .event.duration > 0"
	expect_none "v$f client lines: direction egress, destination the server, network.type $type" "$C" "
		(.event.action | startswith(\"tcp-\")) and $(sock_is "$K") and (
			.network.direction != \"egress\" or .destination.ip != \"$sip\"
			or .destination.port != $port or .network.type != \"$type\"
			or .sockpulse.netns != $NS_C)"
	expect_none "v$f client lines after the SYN carry source $cip:$LP" "$C" "
		(.event.action | startswith(\"tcp-\")) and $(sock_is "$K")
		and .sockpulse.new_state != \"syn_sent\"
		and (.source.ip != \"$cip\" or .source.port != $LP)"
	# The owner was captured at connect: no line of the socket may name another process
	# (a softirq context would), and the lines after the connect carry it.
	expect_none "v$f no client line names a process other than the owner $P" "$C" "
		$(sock_is "$K") and has(\"process\") and (.process.pid != $P or .process.name != \"sp_conn\")"
	expect_none "v$f every client transition carries the owner" "$C" "
		.event.action == \"tcp-state-change\" and $(sock_is "$K") and (.process.pid == null)"

	# --- server side: the accepted socket
	CTX="$(sock_is "$KS")"
	pairs=$(jq -r "select(.event.action == \"tcp-state-change\" and $(sock_is "$KS")) |
		\"\(.sockpulse.old_state)>\(.sockpulse.new_state)\"" "$S" | tr '\n' ' ')
	check "v$f accepted socket transitions syn_recv>established ... last_ack>close: got: $pairs" \
		grep -Eq '(^| )syn_recv>established established>close_wait close_wait>last_ack last_ack>close $' <<<"$pairs"
	expect "v$f accepted socket: direction ingress, source = the client $cip:$LP" "$S" "
		.event.action == \"tcp-state-change\" and $(sock_is "$KS")
		and .sockpulse.new_state == \"close_wait\"
		and .network.direction == \"ingress\"
		and .source.ip == \"$cip\" and .source.port == $LP
		and .destination.ip == \"$sip\" and .destination.port == $port
		and .network.type == \"$type\" and .sockpulse.netns == $NS_S"
	expect_none "v$f accepted socket lines are all ingress from the client" "$S" "
		(.event.action | startswith(\"tcp-\")) and $(sock_is "$KS") and (
			.network.direction != \"ingress\" or .source.ip != \"$cip\" or .source.port != $LP
			or .destination.ip != \"$sip\" or .destination.port != $port)"
	expect "v$f owner on accept: lines after accept carry the accepting pid $PS and comm $W" "$S" "
		$(sock_is "$KS") and .sockpulse.new_state == \"close\"
		and .process.pid == $PS and .process.name == \"$W\""
	# Before accept() the listener's owner is all there is; no other process may appear.
	expect_none "v$f no accepted-socket line names a process other than the listener's or the acceptor's" "$S" "
		$(sock_is "$KS") and has(\"process\") and (.process.pid != $PS or .process.name != \"$W\")
		and (.process.pid != $PL or .process.name != \"sp_conn\")"
	expect_none "v$f the server made no tcp-connect" "$S" ".event.action == \"tcp-connect\""
	CTX="$(sock_is "$KL")"
	expect "v$f listener: close>listen with the owner" "$S" "
		.event.action == \"tcp-state-change\" and $(sock_is "$KL")
		and .sockpulse.old_state == \"close\" and .sockpulse.new_state == \"listen\"
		and .process.pid == $PL and .process.name == \"sp_conn\""
done

# --- the workload started before the agents: its ends, each with its owner and one direction
for f in 4 6; do
	o=$SP_TMP/preconn$f.out
	so=$SP_TMP/preserve$f.out
	K=$(kv "$o" connect cookie)
	P=$(kv "$o" connect pid)
	LP=$(kv "$o" connect lport)
	KS=$(kv "$so" accepted cookie)
	PS=$(kv "$so" accepted pid)
	KL=$(kv "$so" listening cookie)
	PL=$(kv "$so" listening pid)
	W=${WORKER[$f]}
	check_eq "before v$f: sp_conn connected" "$(kv "$o" connect result)" ok
	[ -n "$K" ] && [ -n "$KS" ] || { fail "before v$f: no cookies from sp_conn"; continue; }
	sip=${SRV_IP[$f]} cip=${CLI_IP[$f]} port=${PRE_PORT[$f]}

	CTX="$(sock_is "$K")"
	pairs=$(jq -r "select(.event.action == \"tcp-state-change\" and $(sock_is "$K")) |
		\"\(.sockpulse.old_state)>\(.sockpulse.new_state)\"" "$C" | tr '\n' ' ')
	check "before v$f client transitions established>fin_wait1 ... fin_wait2|closing>close: got: $pairs" \
		grep -Eq '^established>fin_wait1 (.* )?(fin_wait2|closing)>close $' <<<"$pairs"
	expect "before v$f client's close() names the client $P" "$C" "
		.event.action == \"tcp-state-change\" and $(sock_is "$K")
		and .sockpulse.new_state == \"fin_wait1\" and .process.pid == $P and .process.name == \"sp_conn\""
	expect_none "before v$f every client line names the client $P" "$C" "
		$(sock_is "$K") and (.process.pid != $P or .process.name != \"sp_conn\")"
	expect_none "before v$f client lines: egress, destination $sip:$port, source $cip:$LP" "$C" "
		(.event.action | startswith(\"tcp-\")) and $(sock_is "$K") and (
			.network.direction != \"egress\" or .destination.ip != \"$sip\"
			or .destination.port != $port or .source.ip != \"$cip\" or .source.port != $LP)"

	CTX="$(sock_is "$KS")"
	pairs=$(jq -r "select(.event.action == \"tcp-state-change\" and $(sock_is "$KS")) |
		\"\(.sockpulse.old_state)>\(.sockpulse.new_state)\"" "$S" | tr '\n' ' ')
	check "before v$f accepted socket transitions established>close_wait close_wait>last_ack last_ack>close: got: $pairs" \
		test "$pairs" = "established>close_wait close_wait>last_ack last_ack>close "
	expect_none "before v$f every accepted-socket line names the acceptor ${W}[${PS}]" "$S" "
		$(sock_is "$KS") and (.process.pid != $PS or .process.name != \"$W\")"
	expect_none "before v$f accepted socket lines: ingress from the client $cip:$LP to $sip:$port" "$S" "
		(.event.action | startswith(\"tcp-\")) and $(sock_is "$KS") and (
			.network.direction != \"ingress\" or .source.ip != \"$cip\" or .source.port != $LP
			or .destination.ip != \"$sip\" or .destination.port != $port)"
	CTX="$(sock_is "$KL")"
	expect "before v$f listener: listen>close names its owner" "$S" "
		.event.action == \"tcp-state-change\" and $(sock_is "$KL")
		and .sockpulse.old_state == \"listen\" and .sockpulse.new_state == \"close\"
		and .process.pid == $PL and .process.name == \"sp_conn\""
done
unset CTX

# --- the kernel's own view: tcpstates rows for our addresses and ports, per side
if [ -n "$TCPSTATES" ]; then
	# tcpstates -w row: SKADDR PID COMM IP LADDR LPORT RADDR RPORT OLD -> NEW MS (COMM may hold
	# spaces: index from the end)
	ts_pairs() { # LOCAL_IP_REGEX: "count old>new;" per pair, rows of our ports with that local ip
		awk -v re="$1" -v p4="${PORT[4]}" -v p6="${PORT[6]}" '
			$(NF-2) == "->" && $(NF-7) ~ re &&
			($(NF-6) == p4 || $(NF-6) == p6 || $(NF-4) == p4 || $(NF-4) == p6) {
				print tolower($(NF-3)) ">" tolower($(NF-1)) }' "$SP_TMP/tcpstates.out" |
			sort | uniq -c | tr -s ' ' | tr '\n' ';'
	}
	agent_pairs() { # the ports tcpstates is asked about
		jq -r --argjson p4 "${PORT[4]}" --argjson p6 "${PORT[6]}" 'select(.event.action == "tcp-state-change"
			and ([.source.port, .destination.port] | any(. == $p4 or . == $p6)))
			| "\(.sockpulse.old_state)>\(.sockpulse.new_state)"' "$1" |
			sort | uniq -c | tr -s ' ' | tr '\n' ';'
	}
	ts_c=$(ts_pairs '^(10\.1\.0\.1|fd00:1::1)$')
	ts_s=$(ts_pairs '^(10\.1\.0\.2|fd00:1::2)$')
	check "tcpstates saw the client's transitions" test -n "$ts_c"
	check_eq "client transitions (pair counts) equal tcpstates'" "$(agent_pairs "$C")" "$ts_c"
	check_eq "server transitions (pair counts) equal tcpstates'" "$(agent_pairs "$S")" "$ts_s"
fi

sp_finish
