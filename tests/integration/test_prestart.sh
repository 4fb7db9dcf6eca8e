#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# A workload started before the agent, in namespace p over loopback, IPv4 (127.0.0.1, ports
# 610x) and IPv6 (::1, ports 620x); both ends of every connection live in p, so one agent sees
# both. Before any agent runs:
#   svc  (port x00) a server that never closes what it accepts (--leak), with connection A
#        established and accepted;
#   tw   (port x01) a server that closes first when told, with connection C established;
#   twp  (port x02) a connection the server already closed first: a TIME_WAIT socket on the
#        server's side, with the service port as its local port;
#   fork (port x03) a prefork server: the master keeps the listener, a worker (comm sp_worker)
#        accepts; connection D established and accepted by the worker.
# Then `watch --json` (w) and `sockpulse agent` (a1) start, --stuck-after 1s, and:
#   B connects to svc and E to fork: accepted after the start by listeners older than it;
#   a1 is stopped and a second run (a2) started while every connection stays up;
#   then the clients of A, B, D and E close (A and B become CLOSE_WAIT leaks on svc's side:
#   tcp-stuck), tw closes C first, and at last svc exits.
# Asserted, in w's output and in a2's log alike:
#   - every line of a socket names its owner: the server's pid and comm on the server's side
#     (state changes, lease lines, tcp-stuck), the client's on the client's side, including
#     the client's own close() of a connection older than the agent; on the prefork server the
#     worker that accepted (for E before its accept() the master, the listener's other owner,
#     is allowed too);
#   - every line of a socket agrees on its ends: destination is the service, direction ingress
#     on the server's side and egress on the client's, lease lines like state lines, so
#     `jq 'select(.destination.port == PORT)'` finds all lines of both ends;
#   - sockpulse_tcp_time_wait_sockets_by_destination carries no ephemeral port (a1 and a2);
#   - the restarted agent (a2) holds a lease for every open connection at once and ends the
#     leases of the connections older than it with their owners.
# Owner provenance, an assumption until EVENTS.md names it: the field is sockpulse.owner.source,
# "task" (seen in the owner's own task: connect, accept, close...), "socket-table" (found by the
# walk: socket inode -> /proc/*/fd) or "listener" (inherited from the listener's owner). Lines
# the kernel makes outside any task (a FIN arriving: established -> close_wait, tcp-stuck) on a
# socket older than the agent say socket-table or listener; the lines of sockets the agent saw
# made (connected, or accepted, after its start: checked in w, for which B and E are such) say
# task or leave the field out.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"
command -v ss >/dev/null || skip "ss (iproute2) not installed"

ns_new p
declare -A ADDR=([4]=127.0.0.1 [6]=::1) BASE=([4]=6100 [6]=6200)
GO=$SP_TMP/go
# Holds and deadlines are upper bounds: every end comes from its peer closing, $GO or a TERM.
# They are long because in qemu's TCG guests (make vmtest) the workload and two agent starts
# took over a minute.
srv() { # TAG FAMILY PORT_OFFSET ARGS...
	local tag=$1 f=$2 off=$3
	shift 3
	bg_run "$SP_TMP/$tag.out" nsx p "$SP_CONN" serve "${ADDR[$f]}" $((BASE[$f] + off)) --deadline 400 "$@"
	wait_for "$SP_TMP/$tag.out" '^listening' 10 || fail "$tag: server did not listen"
}
cli() { # TAG FAMILY PORT_OFFSET ARGS...
	local tag=$1 f=$2 off=$3
	shift 3
	bg_run "$SP_TMP/$tag.out" nsx p "$SP_CONN" connect "${ADDR[$f]}" $((BASE[$f] + off)) --deadline 400 "$@"
	wait_for "$SP_TMP/$tag.out" '^connect .*result=ok' 10 || fail "$tag: client did not connect"
}

# ---- the workload, before any agent
for f in 4 6; do
	srv "svc$f" $f 0 --leak --count 2 --hold 300
	eval "SVC_PID$f=$BG_PID"
	cli "a$f" $f 0 --wait-file "$GO"
	srv "tw$f" $f 1 --count 1 --wait-file "$GO"
	cli "c$f" $f 1 --hold 300
	srv "fork$f" $f 3 --fork-accept --count 2 --hold 300
	cli "d$f" $f 3 --wait-file "$GO"
	wait_for "$SP_TMP/svc$f.out" '^accepted' 10 || fail "svc$f did not accept A"
	wait_for "$SP_TMP/fork$f.out" '^accepted' 10 || fail "fork$f did not accept D"
done
EST0=$(nsx p ss -Htan state established | wc -l)
check_eq "before the agent: A, C, D established, both ends, v4 and v6" "$EST0" 12

# ---- the agents
# The twp TIME_WAIT sockets last 60 s: made last and counted first, so that a slow machine (a
# TCG guest takes tens of seconds to start an agent) still sees them.
for f in 4 6; do
	srv "twp$f" $f 2 --count 1
	cli "twpc$f" $f 2 --hold 5
	wait_pid "$BG_PID" 10 || fail "twp$f: the client did not see the server close"
done

agent_start w p --stuck-after 1s || sp_finish
host_agent_start a1 p --stuck-after 1s --sockdiag-interval 500ms || sp_finish
# TIME_WAIT by destination with the twp sockets (server side, made before the agent)
check "a1: the TIME_WAIT gauge sees the two server-side TIME_WAIT sockets" \
	wait_metric a1 sockpulse_tcp_time_wait_sockets -ge 2 10
P1=$SP_TMP/a1-tw.prom
cp "$SP_TMP/a1.prom" "$P1" 2>/dev/null || : >"$P1"
for f in 4 6; do
	cli "b$f" $f 0 --wait-file "$GO"
	cli "e$f" $f 3 --wait-file "$GO" --hold 1
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c '^accepted' "$SP_TMP/svc$f.out")" -ge 2 ] && break
		sleep 0.1
	done
	check "svc$f accepted B after the start" test "$(grep -c '^accepted' "$SP_TMP/svc$f.out")" -ge 2
done

tw_labels_ok() { # PROM: every destination label is a service port or "other"
	local bad
	bad=$(sed -n 's/^sockpulse_tcp_time_wait_sockets_by_destination{destination="\([^"]*\)"}.*/\1/p' "$1" |
		grep -Ev '^other$|:(61|62)0[0-3]$')
	[ -z "$bad" ] || echo "    ephemeral labels: $bad"
	[ -z "$bad" ]
}
tw_label() { # PROM PORT: the value of the label ending in :PORT
	awk -v p=":$2\"}" 'index($1, "sockpulse_tcp_time_wait_sockets_by_destination{") == 1 &&
		substr($1, length($1) - length(p) + 1) == p { print $2; found = 1 }
		END { if (!found) print "absent" }' "$1"
}
check "a1: TIME_WAIT by destination: no ephemeral port" tw_labels_ok "$P1"
check_eq "a1: TIME_WAIT by destination: 127.0.0.1:6102" "$(tw_label "$P1" 6102)" 1
check_eq "a1: TIME_WAIT by destination: ::1 port 6202" "$(tw_label "$P1" 6202)" 1

# ---- restart while everything stays up
host_agent_stop a1
EST=$(nsx p ss -Htan state established | wc -l)
host_agent_start a2 p --stuck-after 1s --sockdiag-interval 500ms || sp_finish
check "a2: scrape" scrape a2 "$SP_TMP/a2-start.prom"
check_eq "a2: a transport lease for every connection open at its start" \
	"$(metric "$SP_TMP/a2-start.prom" 'sockpulse_leases{kind="transport",state="alive"}')" "$EST"

# ---- the ends
touch "$GO"
W=$(agent_json w)
for ((i = 0; i < 100; i++)); do
	[ "$(count "$W" '.event.action == "tcp-stuck" and .event.type == ["start"]')" -ge 4 ] && break
	sleep 0.1
done
for f in 4 6; do
	eval "kill -TERM \$SVC_PID$f"
done
for pid in "${SP_BG_PIDS[@]}"; do
	wait_pid "$pid" 20 || fail "a helper did not finish within 20 s"
done
sleep 0.5
check "a2: the TIME_WAIT gauge sees the tw servers' sockets too" \
	wait_metric a2 sockpulse_tcp_time_wait_sockets -ge 4 10
P2=$SP_TMP/a2.prom
check "a2: TIME_WAIT by destination: no ephemeral port" tw_labels_ok "$P2"
check_eq "a2: TIME_WAIT by destination: 127.0.0.1:6101" "$(tw_label "$P2" 6101)" 1
agent_stop w
host_agent_stop a2
A1=$(host_agent_log a1)
A2=$(host_agent_log a2)
check "a1 log is JSON lines" json_lines "$A1"
check "a2 log is JSON lines" json_lines "$A2"

# ---- assertions
# owner FILE LABEL COOKIE PID NAME: the socket has lines, and every one names PID/NAME
owner() {
	local file=$1 label=$2 k=$3 pid=$4 name=$5
	CTX=$(sock_is "$k")
	expect "$label: has lines" "$file" "$(sock_is "$k")" || return
	expect_none "$label: every line names ${name}[${pid}]" "$file" \
		"$(sock_is "$k") and (.process.pid != $pid or .process.name != \"$name\")"
}
# ends FILE LABEL COOKIE DIR DST_IP DST_PORT SRC_PORT: every line agrees on the ends
ends() {
	local file=$1 label=$2 k=$3 dir=$4 ip=$5 port=$6 sport=$7
	expect_none "$label: every line $dir, destination $ip:$port, source port $sport" "$file" "
		$(sock_is "$k") and (.network.direction != \"$dir\" or .destination.ip != \"$ip\"
		or .destination.port != $port
		or (.sockpulse.new_state != \"syn_sent\" and .source.port != $sport))"
}
# provenance FILE LABEL COOKIE FILTER VALUES: lines of the socket matching FILTER carry
# sockpulse.owner.source in VALUES (a jq array; "none" stands for the field left out)
provenance() {
	local file=$1 label=$2 k=$3 filter=$4 values=$5
	expect "$label: a line to judge" "$file" "$(sock_is "$k") and $filter" || return
	expect_none "$label: owner.source in $values" "$file" "
		$(sock_is "$k") and $filter and ((.sockpulse.owner.source // \"none\") | IN(${values}[]) | not)"
}
CLOSE_WAIT='(.event.action == "tcp-state-change" and .sockpulse.new_state == "close_wait")'
INFERRED='["socket-table", "listener"]'
SEEN='["task", "none"]'

for f in 4 6; do
	ip=${ADDR[$f]} b=${BASE[$f]}
	SVC=$(kv "$SP_TMP/svc$f.out" listening pid)
	TWS=$(kv "$SP_TMP/tw$f.out" listening pid)
	MASTER=$(kv "$SP_TMP/fork$f.out" listening pid)
	WORKER=$(kv "$SP_TMP/fork$f.out" accepted pid)
	# cookies: server side s*, client side c*; client ports
	sA=$(kv_nth "$SP_TMP/svc$f.out" accepted 1 cookie)
	sB=$(kv_nth "$SP_TMP/svc$f.out" accepted 2 cookie)
	sC=$(kv "$SP_TMP/tw$f.out" accepted cookie)
	sD=$(kv_nth "$SP_TMP/fork$f.out" accepted 1 cookie)
	sE=$(kv_nth "$SP_TMP/fork$f.out" accepted 2 cookie)
	check "v$f: every server-side cookie known" test -n "$sA" -a -n "$sB" -a -n "$sC" -a -n "$sD" -a -n "$sE"
	for t in a b c d e; do
		eval "c${t^^}=\$(kv \"\$SP_TMP/$t$f.out\" connect cookie)"
		eval "p${t^^}=\$(kv \"\$SP_TMP/$t$f.out\" connect pid)"
		eval "l${t^^}=\$(kv \"\$SP_TMP/$t$f.out\" connect lport)"
	done
	# shellcheck disable=SC2154 # cA..cE, pA..pE, lA..lE are set just above
	for run in w a2; do
		if [ $run = w ]; then F=$W; else F=$A2; fi
		L="v$f $run"
		# owners
		owner "$F" "$L A server side (older than the agent)" "$sA" "$SVC" sp_conn
		owner "$F" "$L A client side (older than the agent)" "$cA" "$pA" sp_conn
		owner "$F" "$L B server side (accepted after the start)" "$sB" "$SVC" sp_conn
		owner "$F" "$L B client side" "$cB" "$pB" sp_conn
		owner "$F" "$L C server side (older than the agent)" "$sC" "$TWS" sp_conn
		owner "$F" "$L C client side (older than the agent)" "$cC" "$pC" sp_conn
		owner "$F" "$L D server side (accepted by the worker before the agent)" "$sD" "$WORKER" sp_worker
		owner "$F" "$L D client side" "$cD" "$pD" sp_conn
		owner "$F" "$L E client side" "$cE" "$pE" sp_conn
		CTX=$(sock_is "$sE")
		expect_none "$L E server side: only the worker, or before accept() the master, named" "$F" "
			$(sock_is "$sE") and (.process.pid != $WORKER or .process.name != \"sp_worker\")
			and (.process.pid != $MASTER or .process.name != \"sp_conn\")"
		expect "$L E server side: the worker named once the client closes" "$F" "
			$(sock_is "$sE") and $CLOSE_WAIT and .process.pid == $WORKER and .process.name == \"sp_worker\""
		expect "$L A client's own close() named: established>fin_wait1 by $pA" "$F" "
			$(sock_is "$cA") and .sockpulse.old_state == \"established\"
			and .sockpulse.new_state == \"fin_wait1\" and .process.pid == $pA"
		expect "$L C client's own close() named: close_wait>last_ack by $pC" "$F" "
			$(sock_is "$cC") and .sockpulse.old_state == \"close_wait\"
			and .sockpulse.new_state == \"last_ack\" and .process.pid == $pC"
		for k in "$sA" "$sB"; do
			expect "$L tcp-stuck close_wait on svc's side names svc[$SVC] (sock $k)" "$F" "
				.event.action == \"tcp-stuck\" and .event.type == [\"start\"] and $(sock_is "$k")
				and .sockpulse.stuck.state == \"close_wait\" and .process.pid == $SVC
				and .process.name == \"sp_conn\" and .network.direction == \"ingress\"
				and .destination.port == $b"
		done
		for k in "$sA" "$cA" "$cC" "$sC"; do
			expect "$L a lease line for the connection older than the agent names its owner (sock $k)" "$F" "
				(.event.action | startswith(\"lease-\")) and $(sock_is "$k") and .process.pid != null"
		done
		KL=$(kv "$SP_TMP/svc$f.out" listening cookie)
		CTX=$(sock_is "$KL")
		expect "$L svc's listener (older than the agent) closes with its owner" "$F" "
			$(sock_is "$KL") and .sockpulse.old_state == \"listen\" and .sockpulse.new_state == \"close\"
			and .process.pid == $SVC and .process.name == \"sp_conn\""
		# ends
		ends "$F" "$L A server side" "$sA" ingress "$ip" "$b" "$lA"
		ends "$F" "$L A client side" "$cA" egress "$ip" "$b" "$lA"
		ends "$F" "$L B server side" "$sB" ingress "$ip" "$b" "$lB"
		ends "$F" "$L B client side" "$cB" egress "$ip" "$b" "$lB"
		ends "$F" "$L C server side" "$sC" ingress "$ip" $((b + 1)) "$lC"
		ends "$F" "$L C client side" "$cC" egress "$ip" $((b + 1)) "$lC"
		ends "$F" "$L D server side" "$sD" ingress "$ip" $((b + 3)) "$lD"
		ends "$F" "$L D client side" "$cD" egress "$ip" $((b + 3)) "$lD"
		ends "$F" "$L E server side" "$sE" ingress "$ip" $((b + 3)) "$lE"
		ends "$F" "$L E client side" "$cE" egress "$ip" $((b + 3)) "$lE"
		CTX="(.sockpulse.sock == $sA or .sockpulse.sock == $cA)"
		expect_count "$L select(.destination.port == $b) finds every line of A, both ends" "$F" \
			"($CTX) and .destination.port == $b" "$(count "$F" "$CTX")"
		# provenance
		provenance "$F" "$L A server side, FIN arrived" "$sA" "$CLOSE_WAIT" "$INFERRED"
		provenance "$F" "$L A server side, tcp-stuck" "$sA" '(.event.action == "tcp-stuck")' "$INFERRED"
		provenance "$F" "$L C client side, FIN arrived" "$cC" "$CLOSE_WAIT" "$INFERRED"
		provenance "$F" "$L D server side, FIN arrived" "$sD" "$CLOSE_WAIT" "$INFERRED"
		[ $run = w ] || continue # B and E are older than a2
		provenance "$F" "$L B client side (connected after the start)" "$cB" true "$SEEN"
		provenance "$F" "$L E client side (connected after the start)" "$cE" true "$SEEN"
		provenance "$F" "$L B server side after accept()" "$sB" "$CLOSE_WAIT" "$SEEN"
		provenance "$F" "$L E server side after accept()" "$sE" "$CLOSE_WAIT" "$SEEN"
	done
	# a1 saw B and E made: their lines there too
	owner "$A1" "v$f a1 B server side" "$sB" "$SVC" sp_conn
	owner "$A1" "v$f a1 B client side" "$cB" "$pB" sp_conn
	ends "$A1" "v$f a1 B server side" "$sB" ingress "$ip" "$b" "$lB"
	# the restarted run knows the old connections' owners before they do anything
	CTX=$(sock_is "$cA")
	expect "v$f a2: lease-closed for A's client side with its owner" "$A2" "
		.event.action == \"lease-closed\" and $(sock_is "$cA") and .process.pid == $pA"
	expect "v$f a2: lease-closed for D's server side with the worker" "$A2" "
		.event.action == \"lease-closed\" and $(sock_is "$sD") and .process.pid == $WORKER
		and .process.name == \"sp_worker\""
done
unset CTX
sp_finish
