#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The connect-outcome matrix, IPv4 and IPv6: every way a connect() can end without a connection,
# and for each one the tcp-connect line must say what the application got. The client prints the
# errno connect() (or SO_ERROR) gave it; the line's error.code must be that errno, its
# sockpulse.failure the errno's class, and there must be exactly one tcp-connect line per attempt.
#
#   ICMP from the server's nft reject rules, every type nft can send:
#     v4 net-unreachable, host-unreachable, prot-unreachable, port-unreachable, net-prohibited,
#        host-prohibited, admin-prohibited
#     v6 no-route, admin-prohibited, addr-unreachable, port-unreachable, policy-fail, reject-route
#   each answered two ways:
#     now   every SYN is rejected at once: the ICMP comes back while connect() still holds the
#           socket (the kernel parks the error in sk_err_soft and the connect ends when the
#           retransmitted SYN is rejected, about 1 s later), or just after the call, racing the
#           application's SO_ERROR read of a non-blocking connect;
#     late  the first SYN is dropped and its retransmission rejected: the error reaches a socket
#           nobody holds and ends the connect at once;
#   ICMP from the router's routes: no route (net unreachable), `prohibit`, `unreachable`;
#   each with a blocking and a non-blocking connect() (poll, then SO_ERROR).
#   Expected class: unreachable, but port-unreachable (ECONNREFUSED) is refused.
#
#   On a blackholed destination (the router drops the SYN silently):
#     syn-timeout  TCP_SYNCNT 1, blocking and non-blocking: timeout, ETIMEDOUT;
#     signal       connect() interrupted by a signal (handler without SA_RESTART): EINTR, then the
#                  client closes the socket: canceled, error.code EINTR;
#     killed       the client is SIGKILLed while its connect() waits: canceled, no error.code
#                  (the application saw nothing);
#     shutdown     another thread shuts the socket down (SHUT_RDWR) while connect() waits:
#                  canceled, error.code the errno connect() returned;
#     closed       another thread closes the descriptor: the call holds the file, so the connect
#                  goes on to its natural end (TCP_SYNCNT 1): timeout, ETIMEDOUT.
#
# Namespaces: c (client, watched) -- r (router) -- s (server with the nft rules).
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v nft >/dev/null || skip "nft (nftables) not installed: the ICMP reject rules need it"

ns_new c
ns_new r
ns_new s
link_pair c r 2
link_pair r s 3
nsx r sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
# Every SYN of the matrix gets its ICMP: no rate limit on the senders (per namespace).
for n in r s; do
	nsx $n sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
	nsx $n sysctl -qw net.ipv4.icmp_msgs_burst=10000 2>/dev/null || true
done
R=$(ns_name r)
ip -n "$R" route add prohibit 10.6.0.0/24
ip -n "$R" route add unreachable 10.8.0.0/24
ip -n "$R" route add blackhole 10.9.0.0/24
ip -n "$R" -6 route add prohibit fd00:6::/64
ip -n "$R" -6 route add unreachable fd00:8::/64
ip -n "$R" -6 route add blackhole fd00:9::/64
# 10.5/fd00:5: the router has no route at all (ICMP net unreachable / no route)
for p in 3 5 6 8 9; do
	ip -n "$(ns_name c)" route add "10.$p.0.0/24" via 10.2.0.2
	ip -n "$(ns_name c)" -6 route add "fd00:$p::/64" via fd00:2::2
done
ip -n "$(ns_name s)" route add 10.2.0.0/24 via 10.3.0.1
ip -n "$(ns_name s)" -6 route add fd00:2::/64 via fd00:3::1

# type:errno the kernel maps it to (icmp_err_convert, icmpv6_err_convert)
KINDS4=(net-unreachable:ENETUNREACH host-unreachable:EHOSTUNREACH prot-unreachable:ENOPROTOOPT
	port-unreachable:ECONNREFUSED net-prohibited:ENETUNREACH host-prohibited:EHOSTUNREACH
	admin-prohibited:EHOSTUNREACH)
KINDS6=(no-route:ENETUNREACH admin-prohibited:EACCES addr-unreachable:EHOSTUNREACH
	port-unreachable:ECONNREFUSED policy-fail:EACCES reject-route:EACCES)
# ports: v4 kind i now 5300+i, late 5350+i; v6 now 5320+i, late 5370+i
nft_rules() { # FAMILY(ip|ip6) ADDR_TYPE ICMP(icmp|icmpv6) BASE KIND...
	local fam=$1 atype=$2 icmp=$3 base=$4 i=0 k
	shift 4
	echo "table $fam sp {"
	echo "  set seen { type $atype . inet_service; flags dynamic, timeout; timeout 2m; }"
	echo "  chain in { type filter hook input priority 0; policy accept;"
	for k in "$@"; do
		echo "    tcp dport $((base + i)) reject with $icmp type ${k%%:*}"
		echo "    tcp dport $((base + 50 + i)) $fam saddr . tcp sport @seen reject with $icmp type ${k%%:*}"
		i=$((i + 1))
	done
	# late: the first SYN of a 4-tuple is dropped (and remembered), its retransmission rejected
	echo "    tcp dport $((base + 50))-$((base + 49 + i)) add @seen { $fam saddr . tcp sport } drop"
	echo "  }"
	echo "}"
}
{
	nft_rules ip ipv4_addr icmp 5300 "${KINDS4[@]}"
	nft_rules ip6 ipv6_addr icmpv6 5320 "${KINDS6[@]}"
} >"$SP_TMP/rules.nft"
if ! nsx s nft -f "$SP_TMP/rules.nft" 2>"$SP_TMP/nft.err"; then
	fail "nft rules did not load: $(head -n3 "$SP_TMP/nft.err")"
	sp_finish
fi

agent_start cli c || sp_finish

declare -A SRV=([4]=10.3.0.2 [6]=fd00:3::2) SINK=([4]=10.9.0.1 [6]=fd00:9::1)
declare -A TYPE=([4]=ipv4 [6]=ipv6)
declare -A MODE=([block]="" [nonblock]="--nonblock --timeout 6")
# case table: NAME -> "family dest port class errno" (errno "-": none; "?": whatever the client
# printed, class "canceled")
declare -A SPEC=()
CASES=()
PIDS=()
run() { # NAME FAMILY DEST PORT CLASS ERRNO SP_CONN_ARGS...
	local name=$1
	SPEC[$name]="$2 $3 $4 $5 $6"
	CASES+=("$name")
	shift 6
	bg_run "$SP_TMP/$name.out" nsx c "$SP_CONN" connect "$@" --deadline 20
	PIDS+=("$BG_PID")
}
class_of() { # ERRNO: the class an ICMP-carried errno belongs to
	case $1 in
	ECONNREFUSED) echo refused ;;
	*) echo unreachable ;;
	esac
}

for f in 4 6; do
	if [ $f = 4 ]; then kinds=("${KINDS4[@]}") base=5300; else kinds=("${KINDS6[@]}") base=5320; fi
	for m in block nonblock; do
		i=0
		for k in "${kinds[@]}"; do
			e=${k#*:} t=${k%%:*}
			# shellcheck disable=SC2086 # MODE is flags or nothing
			run "v$f-$t-now-$m" $f "${SRV[$f]}" $((base + i)) "$(class_of "$e")" "$e" \
				"${SRV[$f]}" $((base + i)) --timeout 6 ${MODE[$m]}
			# shellcheck disable=SC2086
			run "v$f-$t-late-$m" $f "${SRV[$f]}" $((base + 50 + i)) "$(class_of "$e")" "$e" \
				"${SRV[$f]}" $((base + 50 + i)) --timeout 6 ${MODE[$m]}
			i=$((i + 1))
		done
	done
done
# the router's routes
ROUTES=("4 10.5.0.1 ENETUNREACH noroute" "4 10.6.0.1 EHOSTUNREACH prohibit"
	"4 10.8.0.1 EHOSTUNREACH unreachable" "6 fd00:5::1 ENETUNREACH noroute"
	"6 fd00:6::1 EACCES prohibit" "6 fd00:8::1 ENETUNREACH unreachable")
# The router answers a route error with ICMP at most 5 at once, then 1 a second per sender
# (ip_error(): net.ipv4.route.error_burst/error_cost, global sysctls left alone). All the cases
# start at once, so each v4 route case connects from an address of its own: a sender of its own
# for that budget. They still wait up to 15 s (SYN retransmissions at 1 s, 3 s, 7 s).
C=$(ns_name c)
C_MAC=$(ip -n "$C" -j link show dev v2 | jq -r '.[0].address')
src=10
for r in "${ROUTES[@]}"; do
	read -r f d e t <<<"$r"
	for m in block nonblock; do
		bind=()
		if [ "$f" = 4 ]; then
			src=$((src + 1))
			ip -n "$C" addr add "10.2.0.$src/24" dev v2
			ip -n "$R" neigh replace "10.2.0.$src" lladdr "$C_MAC" dev v2 nud permanent
			bind=(--bind "10.2.0.$src")
		fi
		# shellcheck disable=SC2086
		run "v$f-route-$t-$m" $f "$d" 5390 "$(class_of "$e")" "$e" "$d" 5390 --timeout 15 \
			"${bind[@]}" ${MODE[$m]/--timeout 6/--timeout 15}
	done
done
# the blackhole: timeouts and connects ended by the application
for f in 4 6; do
	run "v$f-syn-timeout-block" $f "${SINK[$f]}" 5391 timeout ETIMEDOUT "${SINK[$f]}" 5391 --syncnt 1
	run "v$f-syn-timeout-nonblock" $f "${SINK[$f]}" 5392 timeout ETIMEDOUT "${SINK[$f]}" 5392 \
		--syncnt 1 --nonblock --timeout 8
	run "v$f-signal" $f "${SINK[$f]}" 5393 canceled EINTR "${SINK[$f]}" 5393 --signal-after 300
	run "v$f-shutdown" $f "${SINK[$f]}" 5394 canceled "?" "${SINK[$f]}" 5394 --shutdown-after 300
	run "v$f-closed" $f "${SINK[$f]}" 5395 timeout ETIMEDOUT "${SINK[$f]}" 5395 --syncnt 1 \
		--close-after 300
	run "v$f-killed" $f "${SINK[$f]}" 5396 canceled - "${SINK[$f]}" 5396
	eval "KILL$f=$BG_PID"
done
for f in 4 6; do
	wait_for "$SP_TMP/v$f-killed.out" '^start ' 10 || fail "v$f-killed: sp_conn did not start"
done
sleep 0.3
for f in 4 6; do
	eval "kill -KILL \$KILL$f"
done
for pid in "${PIDS[@]}"; do
	wait_pid "$pid" 20 || fail "a client did not finish within 20 s"
done
agent_stop cli
C=$(agent_json cli)

# An ICMP handled while connect() held the socket parks the error in sk_err_soft; the connect
# then lasts until the retransmitted SYN (about 1 s). Said for the record: scheduling decides
# where the ICMP is handled, so it is not a pass/fail matter.
soft=0
for n in "${CASES[@]}"; do
	case $n in *-now-*) [ "$(kv "$SP_TMP/$n.out" connect us)" -ge 900000 ] 2>/dev/null && soft=$((soft + 1)) ;; esac
done
log "now cases whose ICMP arrived while connect() held the socket (sk_err_soft): $soft"
# Records the kernel could not hand over (a full ring, a skipped program run) are reported, not
# hidden: said here, so a missing line below can be told from a lost one.
log "events-lost lines: $(lines "$C" '.event.action == "events-lost"' | jq -r '"\(.sockpulse.lost.kind) \(.sockpulse.lost.count)"' | tr '\n' ' ')"

for n in "${CASES[@]}"; do
	read -r f dest port class want <<<"${SPEC[$n]}"
	o=$SP_TMP/$n.out
	K=$(kv "$o" start cookie)
	P=$(kv "$o" start pid)
	E=$(kv "$o" connect result)
	if [ -z "$K" ]; then
		fail "$n: sp_conn printed no start line: $(head -c 300 "$o")"
		continue
	fi
	CTX=$(sock_is "$K")
	common=".event.action == \"tcp-connect\" and $(sock_is "$K")
		and .event.outcome == \"failure\" and .sockpulse.failure == \"$class\"
		and .destination.ip == \"$dest\" and .destination.port == $port
		and .network.type == \"${TYPE[$f]}\" and .network.direction == \"egress\"
		and .process.pid == $P and .process.name == \"sp_conn\""
	case $want in
	-)
		check_eq "$n: the client printed nothing after connect() (killed)" "${E:-none}" none
		expect "$n: tcp-connect failure $class without error.code, owner $P" "$C" \
			"$common and (has(\"error\") | not)"
		;;
	"?")
		check "$n: the client's connect() failed (got ${E:-nothing})" \
			test -n "$E" -a "$E" != ok -a "$E" != EINPROGRESS
		expect "$n: tcp-connect failure $class, error.code $E (what the client got), owner $P" \
			"$C" "$common and .error.code == \"$E\""
		;;
	*)
		check_eq "$n: the client's connect() result" "$E" "$want"
		expect "$n: tcp-connect failure $class, error.code $E (what the client got), owner $P" \
			"$C" "$common and .error.code == \"$E\""
		;;
	esac
	expect_count "$n: exactly one tcp-connect for the attempt" "$C" \
		".event.action == \"tcp-connect\" and $(sock_is "$K")" 1
done
unset CTX
expect_none "no connect of the matrix succeeded" "$C" \
	".event.action == \"tcp-connect\" and .event.outcome == \"success\""
sp_finish
