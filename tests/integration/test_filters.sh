#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# In-kernel filters. The same traffic is watched by several agents at once:
#   port    -p 5701        only sockets with 5701 on either side
#   v4      -4             no IPv6 lines
#   v6      -6             no IPv4 lines
#   nsino   --netns INODE  (inode form) only namespace c: not the server namespace s, not x
#   cg      --cgroup DIR   only sockets made by processes of a cgroup v2 directory
# Traffic: c -> s on ports 5701 and 5702, IPv4 and IPv6; loopback connections inside x on 5703;
# two clients c -> s on 5704, one inside the cgroup and one outside.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
ns_new s
ns_new x
link_pair c s 7
NS_C=$(ns_inode c)
agent_start port c -p 5701 || sp_finish
agent_start v4 c -4 || sp_finish
agent_start v6 c -6 || sp_finish
agent_start nsino - --netns "$NS_C" || sp_finish
HAVE_CG=0
if cg_new cg; then
	HAVE_CG=1
	agent_start cg c --cgroup "$CG" || sp_finish
else
	log "no cgroup2 mount: the --cgroup filter is not tested"
fi

declare -A SRV=([4]=10.7.0.2 [6]=fd00:7::2) LO=([4]=127.0.0.1 [6]=::1)
PIDS=()
for f in 4 6; do
	for port in 5701 5702; do
		bg_run "$SP_TMP/srv$f-$port.out" nsx s "$SP_CONN" serve "${SRV[$f]}" $port --hold 3 --deadline 20
		PIDS+=("$BG_PID")
		wait_for "$SP_TMP/srv$f-$port.out" '^listening' 10 || fail "v$f server $port did not listen"
		bg_run "$SP_TMP/cli$f-$port.out" nsx c "$SP_CONN" connect "${SRV[$f]}" $port --send 10 --deadline 20
		PIDS+=("$BG_PID")
	done
	bg_run "$SP_TMP/xsrv$f.out" nsx x "$SP_CONN" serve "${LO[$f]}" 5703 --hold 3 --deadline 20
	PIDS+=("$BG_PID")
	wait_for "$SP_TMP/xsrv$f.out" '^listening' 10 || fail "v$f x server did not listen"
	bg_run "$SP_TMP/xcli$f.out" nsx x "$SP_CONN" connect "${LO[$f]}" 5703 --send 10 --deadline 20
	PIDS+=("$BG_PID")
done
if [ $HAVE_CG = 1 ]; then
	bg_run "$SP_TMP/cgsrv.out" nsx s "$SP_CONN" serve 10.7.0.2 5704 --count 2 --hold 3 --deadline 20
	PIDS+=("$BG_PID")
	wait_for "$SP_TMP/cgsrv.out" '^listening' 10 || fail "cgroup test server did not listen"
	# shellcheck disable=SC2016 # $$ is the inner shell's pid, which then execs the client
	bg_run "$SP_TMP/cgin.out" bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$CG" \
		ip netns exec "$(ns_name c)" "$SP_CONN" connect 10.7.0.2 5704 --send 10 --deadline 20
	PIDS+=("$BG_PID")
	wait_pid "$BG_PID" 20
	bg_run "$SP_TMP/cgout.out" nsx c "$SP_CONN" connect 10.7.0.2 5704 --send 10 --deadline 20
	PIDS+=("$BG_PID")
	# refused connects (a blocking connect()'s return writes its line): inside and outside
	# shellcheck disable=SC2016
	bg_run "$SP_TMP/cgrin.out" bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$CG" \
		ip netns exec "$(ns_name c)" "$SP_CONN" connect 10.7.0.2 5705 --deadline 20
	PIDS+=("$BG_PID")
	bg_run "$SP_TMP/cgrout.out" nsx c "$SP_CONN" connect 10.7.0.2 5705 --deadline 20
	PIDS+=("$BG_PID")
fi
for pid in "${PIDS[@]}"; do
	wait_pid "$pid" 20 || fail "a helper did not finish within 20 s"
done
for a in port v4 v6 nsino; do
	agent_stop $a
done
[ $HAVE_CG = 1 ] && agent_stop cg

tcp='(.event.action | startswith("tcp-"))'
P=$(agent_json port)
for f in 4 6; do
	expect "port: v$f connect to 5701 reported" "$P" ".event.action == \"tcp-connect\" and .destination.port == 5701 and .network.type == \"ipv$f\""
done
expect_none "port: nothing without 5701 on either side" "$P" \
	"$tcp and .destination.port != 5701 and .source.port != 5701"

for f in 4 6; do
	F=$(agent_json v$f)
	other=$((f == 4 ? 6 : 4))
	expect "-$f: ipv$f connects to both ports reported" "$F" \
		".event.action == \"tcp-connect\" and .network.type == \"ipv$f\" and .destination.port == 5702"
	expect_none "-$f: no ipv$other line" "$F" "$tcp and .network.type != \"ipv$f\""
done

N=$(agent_json nsino)
expect_count "netns by inode: the connects of c reported" "$N" ".event.action == \"tcp-connect\"" $((4 + 4 * HAVE_CG))
expect_none "netns by inode: every line is namespace c's" "$N" "$tcp and .sockpulse.netns != $NS_C"
expect_none "netns by inode: nothing of x's loopback traffic (5703)" "$N" \
	"$tcp and (.destination.port == 5703 or .source.port == 5703)"
expect_none "netns by inode: nothing of the server namespace (no accepted or listening socket)" "$N" \
	"$tcp and (.network.direction == \"ingress\" or .sockpulse.new_state == \"listen\")"

if [ $HAVE_CG = 1 ]; then
	G=$(agent_json cg)
	KIN=$(kv "$SP_TMP/cgin.out" connect cookie)
	KOUT=$(kv "$SP_TMP/cgout.out" connect cookie)
	check_eq "cgroup: both clients connected" "$(kv "$SP_TMP/cgin.out" connect result),$(kv "$SP_TMP/cgout.out" connect result)" ok,ok
	expect "cgroup: the client inside the cgroup is reported" "$G" \
		".event.action == \"tcp-connect\" and $(sock_is "${KIN:-0}") and .event.outcome == \"success\""
	expect_none "cgroup: nothing of the client outside the cgroup" "$G" "$(sock_is "${KOUT:-0}")"
	KRIN=$(kv "$SP_TMP/cgrin.out" connect cookie)
	KROUT=$(kv "$SP_TMP/cgrout.out" connect cookie)
	expect "cgroup: the refused client inside the cgroup is reported, refused" "$G" "
		.event.action == \"tcp-connect\" and $(sock_is "${KRIN:-0}")
		and .sockpulse.failure == \"refused\" and .error.code == \"ECONNREFUSED\""
	expect_none "cgroup: nothing of the refused client outside the cgroup" "$G" \
		"$(sock_is "${KROUT:-0}")"
	expect_none "cgroup: nothing of sockets outside the cgroup" "$G" "$tcp and
		$(sock_is "${KIN:-0}" | sed 's/==/!=/') and $(sock_is "${KRIN:-0}" | sed 's/==/!=/')"
fi
sp_finish
