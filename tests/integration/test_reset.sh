#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Resets on established connections, over IPv4 and IPv6, seen from both ends (one agent per
# namespace):
#   port 5401: the server closes the accepted socket with SO_LINGER 0 -> it sends the RST, the
#              client receives it (and its read fails with ECONNRESET);
#   port 5402: the client does the same -> the client sends, the server receives.
# Each side must say received/sent with sockpulse.old_state established.
# Ports 5403/5404: the same two, with the connections made (and accepted) before the agents
# start; the resets come after, and each end's lines must still name its owner and agree on
# direction and ends.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
ns_new s
link_pair c s 4

declare -A SRV=([4]=10.4.0.2 [6]=fd00:4::2)
PIDS=()
GO=$SP_TMP/go
for f in 4 6; do
	bg_run "$SP_TMP/psrst$f.out" nsx s "$SP_CONN" serve "${SRV[$f]}" 5403 --wait-file "$GO" --rst-after-accept --deadline 40
	PIDS+=("$BG_PID")
	# The holding ends wait for the reset, which comes once both agents are up: that took over
	# 5 s in qemu's TCG, so the holds are long (a reset ends a hold at once).
	bg_run "$SP_TMP/pshold$f.out" nsx s "$SP_CONN" serve "${SRV[$f]}" 5404 --hold 30 --deadline 40
	PIDS+=("$BG_PID")
	wait_for "$SP_TMP/psrst$f.out" '^listening' 10 || fail "v$f early rst server did not listen"
	wait_for "$SP_TMP/pshold$f.out" '^listening' 10 || fail "v$f early hold server did not listen"
	bg_run "$SP_TMP/pcrecv$f.out" nsx c "$SP_CONN" connect "${SRV[$f]}" 5403 --hold 30 --deadline 40
	PIDS+=("$BG_PID")
	bg_run "$SP_TMP/pcsend$f.out" nsx c "$SP_CONN" connect "${SRV[$f]}" 5404 --wait-file "$GO" --hold 0.3 --linger0 --deadline 40
	PIDS+=("$BG_PID")
	wait_for "$SP_TMP/psrst$f.out" '^accepted' 10 || fail "v$f early rst server did not accept"
	wait_for "$SP_TMP/pshold$f.out" '^accepted' 10 || fail "v$f early hold server did not accept"
done

agent_start cli c || sp_finish
agent_start srv s || sp_finish
touch "$GO"
for f in 4 6; do
	# The server holds 1 s, then aborts with SO_LINGER 0: resetting at once, it can beat the
	# client's connect() back to userspace on a slow machine, which then fails the connect with
	# ECONNRESET instead of a read of an established connection.
	bg_run "$SP_TMP/srst$f.out" nsx s "$SP_CONN" serve "${SRV[$f]}" 5401 --hold 1 --linger0 \
		--deadline 20
	PIDS+=("$BG_PID")
	bg_run "$SP_TMP/shold$f.out" nsx s "$SP_CONN" serve "${SRV[$f]}" 5402 --hold 5 --deadline 20
	PIDS+=("$BG_PID")
	wait_for "$SP_TMP/srst$f.out" '^listening' 10 || fail "v$f rst server did not listen"
	wait_for "$SP_TMP/shold$f.out" '^listening' 10 || fail "v$f hold server did not listen"
	bg_run "$SP_TMP/crecv$f.out" nsx c "$SP_CONN" connect "${SRV[$f]}" 5401 --hold 5 --deadline 20
	PIDS+=("$BG_PID")
	# The client holds 0.3 s (the server has accepted by then), then aborts with SO_LINGER 0.
	bg_run "$SP_TMP/csend$f.out" nsx c "$SP_CONN" connect "${SRV[$f]}" 5402 --hold 0.3 --linger0 --deadline 20
	PIDS+=("$BG_PID")
done
for pid in "${PIDS[@]}"; do
	wait_pid "$pid" 40 || fail "a helper did not finish within 40 s"
done
agent_stop cli
agent_stop srv
C=$(agent_json cli)
S=$(agent_json srv)

# rst LABEL FILE COOKIE DIRECTION OWNER_PID
rst() {
	local label=$1 file=$2 k=$3 dir=$4 pid=$5
	CTX="$(sock_is "$k") and .event.action == \"tcp-reset\""
	expect "$label: tcp-reset $dir, old_state established, owner $pid" "$file" "
		.event.action == \"tcp-reset\" and $(sock_is "$k")
		and .sockpulse.reset.direction == \"$dir\" and .sockpulse.old_state == \"established\"
		and .process.pid == $pid and .process.name == \"sp_conn\""
	expect_count "$label: exactly one tcp-reset for the socket" "$file" \
		".event.action == \"tcp-reset\" and $(sock_is "$k")" 1
	expect "$label: established>close" "$file" "
		.event.action == \"tcp-state-change\" and $(sock_is "$k")
		and .sockpulse.old_state == \"established\" and .sockpulse.new_state == \"close\""
	expect_none "$label: no keepalive/retransmit timeout" "$file" "
		$(sock_is "$k") and (.event.action == \"tcp-keepalive-timeout\" or .event.action == \"tcp-retransmit-timeout\")"
}

for f in 4 6; do
	check_eq "v$f client saw the server's reset" "$(kv "$SP_TMP/crecv$f.out" end error)" ECONNRESET
	check_eq "v$f client aborted with linger0" "$(kv "$SP_TMP/csend$f.out" closed linger0)" 1
	check_eq "v$f server saw the client's reset" "$(kv "$SP_TMP/shold$f.out" end error)" ECONNRESET
	rst "v$f client, server aborted" "$C" "$(kv "$SP_TMP/crecv$f.out" connect cookie)" received \
		"$(kv "$SP_TMP/crecv$f.out" connect pid)"
	rst "v$f server, server aborted" "$S" "$(kv "$SP_TMP/srst$f.out" accepted cookie)" sent \
		"$(kv "$SP_TMP/srst$f.out" accepted pid)"
	rst "v$f client, client aborted" "$C" "$(kv "$SP_TMP/csend$f.out" connect cookie)" sent \
		"$(kv "$SP_TMP/csend$f.out" connect pid)"
	rst "v$f server, client aborted" "$S" "$(kv "$SP_TMP/shold$f.out" accepted cookie)" received \
		"$(kv "$SP_TMP/shold$f.out" accepted pid)"
	# made before the agents: every line of each end names its owner
	check_eq "v$f early client saw the server's reset" "$(kv "$SP_TMP/pcrecv$f.out" end error)" ECONNRESET
	check_eq "v$f early server saw the client's reset" "$(kv "$SP_TMP/pshold$f.out" end error)" ECONNRESET
	for e in "C pcrecv connect received 5403" "S psrst accepted sent 5403" \
		"C pcsend connect sent 5404" "S pshold accepted received 5404"; do
		read -r side tag step dir port <<<"$e"
		if [ "$side" = C ]; then file=$C way=egress; else file=$S way=ingress; fi
		k=$(kv "$SP_TMP/$tag$f.out" "$step" cookie)
		pid=$(kv "$SP_TMP/$tag$f.out" "$step" pid)
		rst "v$f $tag (before the agents)" "$file" "$k" "$dir" "$pid"
		expect_none "v$f $tag (before the agents): every line names sp_conn[$pid]" "$file" "
			$(sock_is "$k") and (.process.pid != $pid or .process.name != \"sp_conn\")"
		expect_none "v$f $tag (before the agents): every line $way, destination ${SRV[$f]}:$port" "$file" "
			$(sock_is "$k") and (.network.direction != \"$way\"
			or .destination.ip != \"${SRV[$f]}\" or .destination.port != $port)"
	done
done
unset CTX
sp_finish
