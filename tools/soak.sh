#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Soak: `sockpulse agent` (log file, /metrics, sock_diag) for MINUTES under continuous, bounded
# churn in network namespaces this script creates and removes:
#   - short successful connections on loopback (sp_conn burst), the bulk of the load;
#   - connections over a veth to a peer namespace: normal closes, aborts with SO_LINGER 0
#     (reset sent), resets by the server right after accept (reset received), refusals;
#   - keepalive deaths: clients with KEEPIDLE=1 KEEPINTVL=1 KEEPCNT=2 to a second peer whose veth
#     is set down, then up again for the next round.
# The agent watches the client namespace only (--netns), so other work on the host does not
# blur the numbers. Every 10 s one row: agent RSS, open fds, events/s (sockpulse_events_total
# deltas), lost records (sockpulse_events_lost_total), log size. At the end: the churn made, a
# cross-check of what the agent counted against it, and one verdict line: RSS and fds flat after
# warm-up (RSS: mean of the first third of the samples against the last third; fds: the fewest
# in each), 0 lost, nothing unexpected on the agent's stderr, exit status 0 on SIGTERM.
#
# Informational like tools/bench.sh: exits 0 when it ran, whatever the verdict; 1 when it could
# not run (reason on stderr); 2 on bad usage; 130 when interrupted.
set -uo pipefail

usage() {
	cat <<EOF
Usage: tools/soak.sh [--out DIR] [--minutes N]

  --out DIR      build directory holding sockpulse and tools/sp_conn (default: build)
  --minutes N    how long the churn runs (default: \$SOAK_MINUTES or 10; decimals allowed)

Environment:
  SOAK_MINUTES=10        as --minutes
  SOAK_INTERVAL=10       seconds between samples
  SOAK_BURST=50          loopback connections per burst (one burst about every 0.5 s)
  SOAK_LOG_MAX=32M       agent --log-max-size (rotation is part of the soak); SOAK_LOG_KEEP=2
  SOAK_AGENT_ARGS=       extra arguments for 'sockpulse agent'
  SOAK_RSS_SLACK_KB=1024 RSS growth (last third over first third) still called flat; or 2%,
                         whichever is larger
  SOAK_KEEP=0            1: keep the work directory (agent log, stderr, samples)

Needs root (network namespaces, BPF), ip, curl, jq.
Exit codes: 0 ran (the verdict line says how it went); 1 could not run; 2 bad usage;
130 interrupted.
EOF
}

usage_error() {
	echo "soak: $*" >&2
	exit 2
}

die() {
	echo "soak: cannot run: $*" >&2
	exit 1
}

OUT=build
MINUTES=${SOAK_MINUTES:-10}
while [ $# -gt 0 ]; do
	case "$1" in
	--out)
		[ $# -ge 2 ] || usage_error "--out needs a directory"
		OUT=$2
		shift 2
		;;
	--minutes)
		[ $# -ge 2 ] || usage_error "--minutes needs a number"
		MINUTES=$2
		shift 2
		;;
	-h | --help)
		usage
		exit 0
		;;
	*) usage_error "unknown argument '$1' (see --help)" ;;
	esac
done

INTERVAL=${SOAK_INTERVAL:-10}
BURST=${SOAK_BURST:-50}
LOG_MAX=${SOAK_LOG_MAX:-32M}
LOG_KEEP=${SOAK_LOG_KEEP:-2}
AGENT_ARGS=${SOAK_AGENT_ARGS:-}
RSS_SLACK_KB=${SOAK_RSS_SLACK_KB:-1024}
KEEP=${SOAK_KEEP:-0}

[[ $MINUTES =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v m="$MINUTES" 'BEGIN { exit !(m > 0) }' ||
	usage_error "minutes '$MINUTES': want a number > 0"
[[ $INTERVAL =~ ^[1-9][0-9]*$ ]] || usage_error "SOAK_INTERVAL='$INTERVAL': want whole seconds >= 1"
[[ $BURST =~ ^[1-9][0-9]*$ ]] || usage_error "SOAK_BURST='$BURST': want an integer >= 1"
[[ $LOG_KEEP =~ ^[0-9]+$ ]] || usage_error "SOAK_LOG_KEEP='$LOG_KEEP': want an integer >= 0"
[[ $RSS_SLACK_KB =~ ^[0-9]+$ ]] || usage_error "SOAK_RSS_SLACK_KB='$RSS_SLACK_KB': want kB"

AGENT=$OUT/sockpulse
SP_CONN=$OUT/tools/sp_conn
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF)"
for cmd in ip curl jq awk; do
	command -v "$cmd" >/dev/null || die "'$cmd' not found (make deps installs it)"
done
[ -x "$AGENT" ] || die "$AGENT not built (make)"
[ -x "$SP_CONN" ] || die "$SP_CONN not built (make)"

DURATION_S=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 + 0.5 }')
[ "$DURATION_S" -ge "$INTERVAL" ] || usage_error "run shorter than one sample interval"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sp-soak.XXXXXX")
ID=sp-soak-$$
NS_C=$ID-c # client side: the agent watches this one
NS_S=$ID-s # peer for veth connects, refusals, resets
NS_K=$ID-k # peer that vanishes under keepalive clients
STOP=$WORK/stop
CHURN=$WORK/churn # one line per outcome: "<kind> <count>"
NSES=()
WORKERS=()
AGENT_PID=
AGENT_RC=

# Every background job gets its own process group (job control), so a worker and the sp_conn
# processes it started can be ended together by that group's id.
set -m

stop_workers() {
	local pid i

	[ ${#WORKERS[@]} -gt 0 ] || return 0
	touch "$STOP"
	# A keepalive round takes up to ~15 s; every sp_conn has its own --deadline.
	for ((i = 0; i < 200; i++)); do
		for pid in "${WORKERS[@]}"; do
			kill -0 "$pid" 2>/dev/null && break
			pid=
		done
		[ -n "$pid" ] || break
		sleep 0.1
	done
	for pid in "${WORKERS[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || true
	done
	for pid in "${WORKERS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	WORKERS=()
}

# SIGTERM, wait up to 20 s, then SIGKILL; sets AGENT_RC.
stop_agent() {
	local i

	[ -n "$AGENT_PID" ] || return 0
	kill -TERM "$AGENT_PID" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$AGENT_PID" 2>/dev/null; then
		echo "soak: agent ignored SIGTERM for 20 s: killed" >&2
		kill -KILL "$AGENT_PID" 2>/dev/null || true
	fi
	wait "$AGENT_PID" 2>/dev/null
	AGENT_RC=$?
	AGENT_PID=
}

cleanup() {
	local ns

	stop_workers
	stop_agent
	for ns in "${NSES[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	if [ "$KEEP" = 1 ] || [ "${VERDICT:-PASS}" != PASS ]; then
		echo "soak: work directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

ns_add() {
	ip netns add "$1" || die "ip netns add $1 failed"
	NSES+=("$1")
	ip -n "$1" link set lo up || die "cannot bring up lo in $1"
}

# veth N between the client namespace (10.N.0.1) and PEER (10.N.0.2), permanent neighbour
# entries: a peer whose link is down is silent, never "unreachable" by failed ARP.
veth_to() {
	local peer=$1 n=$2 mac_c mac_p

	ip link add "v$n" netns "$NS_C" type veth peer name "v$n" netns "$peer" ||
		die "cannot create veth v$n"
	ip -n "$NS_C" addr add "10.$n.0.1/24" dev "v$n"
	ip -n "$peer" addr add "10.$n.0.2/24" dev "v$n"
	ip -n "$NS_C" link set "v$n" up
	ip -n "$peer" link set "v$n" up
	mac_c=$(ip -n "$NS_C" -j link show dev "v$n" | jq -r '.[0].address')
	mac_p=$(ip -n "$peer" -j link show dev "v$n" | jq -r '.[0].address')
	ip -n "$NS_C" neigh replace "10.$n.0.2" lladdr "$mac_p" dev "v$n" nud permanent
	ip -n "$peer" neigh replace "10.$n.0.1" lladdr "$mac_c" dev "v$n" nud permanent
}

ns_add "$NS_C"
ns_add "$NS_S"
ns_add "$NS_K"
veth_to "$NS_S" 71
veth_to "$NS_K" 72
# TIME_WAIT from the bursts: a wide port range and reuse, in the client namespace only.
ip netns exec "$NS_C" sysctl -q -w net.ipv4.ip_local_port_range="1024 65535" \
	net.ipv4.tcp_tw_reuse=1 >/dev/null || die "cannot set sysctls in $NS_C"

# ---------------------------------------------------------------------------------------------
# Churn workers. Each loops until $STOP exists; every sp_conn carries --deadline, every wait is
# bounded. Outcomes are appended to $CHURN; anything unexpected is counted as "unexpected".

note() { echo "$1 ${2:-1}" >>"$CHURN"; }
# unexpected WHAT FILE...: counted, and the helper's output kept for the report
unexpected() {
	local what=$1
	shift
	note unexpected
	{
		echo "== $what at $(date +%T)"
		cat "$@" 2>/dev/null
	} >>"$WORK/unexpected.txt"
}
running() { [ ! -e "$STOP" ]; }
cx() { ip netns exec "$NS_C" "$SP_CONN" "$@"; }

# wait_line FILE REGEX SECONDS
wait_line() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# waitpid_bounded PID SECONDS: false (and the process group is killed) if it outlives SECONDS.
waitpid_bounded() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		return 1
	fi
	wait "$1" 2>/dev/null
	return 0
}

worker_burst() {
	local out=$WORK/w-burst.out
	while running; do
		if cx burst 127.0.0.1 7101 --count "$BURST" --timeout 5 --deadline 30 >"$out" 2>&1; then
			note ok "$BURST"
		else
			unexpected burst "$out"
		fi
		sleep 0.5
	done
}

worker_veth() {
	local d=$WORK/w-veth srv rst
	mkdir -p "$d"
	while running; do
		# a: normal close; b: abort with SO_LINGER 0 (reset sent by the client). The old
		# outputs go first: a background job truncates its file only once it runs.
		rm -f "$d"/*.out
		ip netns exec "$NS_S" "$SP_CONN" serve 10.71.0.2 7102 --count 2 --send 64 \
			--timeout 5 --deadline 20 >"$d/srv.out" 2>&1 &
		srv=$!
		ip netns exec "$NS_S" "$SP_CONN" serve 10.71.0.2 7103 --count 1 --rst-after-accept \
			--timeout 5 --deadline 20 >"$d/rst.out" 2>&1 &
		rst=$!
		if wait_line "$d/srv.out" '^listening' 5 && wait_line "$d/rst.out" '^listening' 5; then
			cx connect 10.71.0.2 7102 --send 32 --timeout 5 --deadline 20 >"$d/a.out" 2>&1 &&
				note ok || unexpected veth-close "$d/a.out"
			cx connect 10.71.0.2 7102 --send 32 --linger0 --timeout 5 --deadline 20 \
				>"$d/b.out" 2>&1 && note reset-sent || unexpected veth-linger0 "$d/b.out"
			# the server resets right after accept: reset received during the hold
			cx connect 10.71.0.2 7103 --hold 2 --timeout 5 --deadline 20 >"$d/c.out" 2>&1
			grep -Eq '(error|result)=ECONNRESET' "$d/c.out" && note reset-received ||
				unexpected veth-reset "$d/c.out"
			for _ in 1 2; do
				cx connect 10.71.0.2 7109 --timeout 5 --deadline 20 >"$d/r.out" 2>&1
				grep -q 'result=ECONNREFUSED' "$d/r.out" && note refused ||
					unexpected veth-refused "$d/r.out"
			done
		else
			unexpected veth-listen "$d/srv.out" "$d/rst.out"
		fi
		waitpid_bounded "$srv" 10 || unexpected veth-server "$d/srv.out"
		waitpid_bounded "$rst" 10 || unexpected veth-rst-server "$d/rst.out"
		sleep 0.5
	done
}

worker_keepalive() {
	local d=$WORK/w-ka srv c1 c2 i
	mkdir -p "$d"
	while running; do
		rm -f "$d"/*.out
		ip netns exec "$NS_K" "$SP_CONN" serve 10.72.0.2 7104 --count 2 --hold 20 \
			--deadline 30 >"$d/srv.out" 2>&1 &
		srv=$!
		if ! wait_line "$d/srv.out" '^listening' 5; then
			unexpected ka-listen "$d/srv.out"
			waitpid_bounded "$srv" 1
			sleep 1
			continue
		fi
		cx connect 10.72.0.2 7104 --keepalive 1,1,2 --hold 20 --deadline 30 >"$d/c1.out" 2>&1 &
		c1=$!
		cx connect 10.72.0.2 7104 --keepalive 1,1,2 --hold 20 --deadline 30 >"$d/c2.out" 2>&1 &
		c2=$!
		wait_line "$d/c1.out" '^connect ' 5
		wait_line "$d/c2.out" '^connect ' 5
		sleep 2 # a few answered probes: keepalive keeps the leases alive
		ip -n "$NS_K" link set v72 down
		for i in c1 c2; do
			waitpid_bounded "${!i}" 15
			if grep -q 'error=ETIMEDOUT' "$d/$i.out"; then
				note keepalive-death
				awk '$1 == "connect" { for (f = 2; f <= NF; f++) if ($f ~ /^cookie=/)
					print substr($f, 8) }' "$d/$i.out" >>"$WORK/ka-cookies"
			else
				unexpected ka-death "$d/$i.out"
			fi
		done
		ip -n "$NS_K" link set v72 up
		kill -TERM "$srv" 2>/dev/null
		waitpid_bounded "$srv" 5
		sleep 1
	done
}

# ---------------------------------------------------------------------------------------------
# The agent

# shellcheck disable=SC2206 # word splitting of the extra flags is intended
EXTRA=($AGENT_ARGS)
"$AGENT" agent --netns "/run/netns/$NS_C" --log "$WORK/log/events.jsonl" \
	--log-max-size "$LOG_MAX" --log-keep "$LOG_KEEP" --metrics 127.0.0.1:0 "${EXTRA[@]}" \
	>"$WORK/agent.out" 2>"$WORK/agent.err" &
AGENT_PID=$!
for ((i = 0; i < 300; i++)); do
	grep -q ready "$WORK/agent.err" && break
	if ! kill -0 "$AGENT_PID" 2>/dev/null; then
		wait "$AGENT_PID"
		AGENT_PID=
		sed 's/^/  | /' "$WORK/agent.err" >&2
		die "the agent exited before 'ready'"
	fi
	sleep 0.1
done
grep -q ready "$WORK/agent.err" || die "the agent printed no 'ready' within 30 s"
URL=$(sed -n 's|.*ready:.* metrics \(http://[^ ,]*\).*|\1|p' "$WORK/agent.err" | head -n1)
[ -n "$URL" ] || die "no metrics URL in the ready line: $(grep ready "$WORK/agent.err")"

: >"$CHURN"
for w in worker_burst worker_veth worker_keepalive; do
	"$w" &
	WORKERS+=($!)
done

# ---------------------------------------------------------------------------------------------
# Sampling

# sum of every sample of one metric family (all label sets) in a scrape
msum() { awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.0f", s }' "$2"; }
mval() { awk -v s="$1" '$1 == s { v = $2 } END { printf "%.0f", v }' "$2"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT_PID/status" 2>/dev/null || echo 0; }
fds() { find "/proc/$AGENT_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
log_bytes() { find "$WORK/log" -maxdepth 1 -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

SAMPLES=$WORK/samples # t rss fds events lost log_bytes
: >"$SAMPLES"
echo "soak: ${MINUTES} min, agent pid $AGENT_PID (--netns $NS_C), sample every ${INTERVAL}s," \
	"log rotates at $LOG_MAX keeping $LOG_KEEP" >&2
printf '%6s %9s %5s %9s %12s %6s %8s %6s %7s\n' t_s rss_kB fds events/s events_total lost \
	log_MB rotns leases
t0=$(date +%s)
prev_ev=
prev_t=
next=$((t0 + INTERVAL))
while :; do
	now=$(date +%s)
	if [ "$now" -lt "$next" ]; then
		sleep $((next - now))
		continue
	fi
	kill -0 "$AGENT_PID" 2>/dev/null || {
		echo "soak: the agent died during the run" >&2
		break
	}
	if ! curl -sf --max-time 5 -o "$WORK/m.prom" "$URL"; then
		echo "soak: scrape failed at t=$((now - t0))s" >&2
		next=$((next + INTERVAL))
		continue
	fi
	t=$(($(date +%s) - t0))
	ev=$(msum sockpulse_events_total "$WORK/m.prom")
	lost=$(msum sockpulse_events_lost_total "$WORK/m.prom")
	rot=$(mval sockpulse_log_rotations_total "$WORK/m.prom")
	leases=$(msum sockpulse_leases "$WORK/m.prom")
	rss=$(rss_kb)
	nfd=$(fds)
	lb=$(log_bytes)
	if [ -n "$prev_ev" ] && [ "$t" -gt "$prev_t" ]; then
		eps=$(((ev - prev_ev) / (t - prev_t)))
	else
		eps=$((ev / (t > 0 ? t : 1)))
	fi
	prev_ev=$ev
	prev_t=$t
	echo "$t $rss $nfd $eps $ev $lost $lb" >>"$SAMPLES"
	printf '%6d %9d %5d %9d %12d %6d %8.1f %6d %7d\n' "$t" "$rss" "$nfd" "$eps" "$ev" "$lost" \
		"$(awk -v b="$lb" 'BEGIN { print b / 1048576 }')" "$rot" "$leases"
	next=$((next + INTERVAL))
	[ "$((next - t0))" -le "$DURATION_S" ] || break
done

# ---------------------------------------------------------------------------------------------
# The end: stop the churn, let the agent catch up, compare, stop the agent.

stop_workers
sleep 2
FINAL=$WORK/final.prom
curl -sf --max-time 5 -o "$FINAL" "$URL" || : >"$FINAL"
stop_agent

churn() { awk -v k="$1" '$1 == k { s += $2 } END { print s + 0 }' "$CHURN"; }
echo
echo "churn: $(churn ok) connections closed normally, $(churn reset-sent) aborted (reset sent)," \
	"$(churn reset-received) reset by the peer, $(churn refused) refused," \
	"$(churn keepalive-death) keepalive deaths, $(churn unexpected) unexpected outcomes"

NOTES=()
crosscheck() { # DESC AGENT_VALUE CHURN_VALUE
	local ok=same
	[ "$2" = "$3" ] || {
		ok=DIFFERENT
		NOTES+=("$1: agent $2, churn $3")
	}
	printf 'cross-check: %-52s agent %8s  churn %8s  %s\n' "$1" "$2" "$3" "$ok"
}
# The kernel's own count in the client namespace: connections it aborted on a timeout
# (keepalive or retransmission), TcpExt TCPAbortOnTimeout. It tells a death the agent missed
# from one the churn miscounted.
kernel_aborts() {
	ip netns exec "$NS_C" cat /proc/net/netstat 2>/dev/null | awk '
		$1 == "TcpExt:" && !h { for (i = 2; i <= NF; i++) col[$i] = i; h = 1; next }
		$1 == "TcpExt:" && h { print $col["TCPAbortOnTimeout"] + 0; exit }'
}
if [ -s "$FINAL" ]; then
	echo "kernel: the client namespace aborted $(kernel_aborts) connections on a timeout" \
		"(TcpExt TCPAbortOnTimeout)"
	crosscheck "keepalive timeouts" "$(mval sockpulse_tcp_keepalive_timeouts_total "$FINAL")" \
		"$(churn keepalive-death)"
	crosscheck "retransmission timeouts (none made)" \
		"$(mval sockpulse_tcp_retransmit_timeouts_total "$FINAL")" 0
	crosscheck "connect failures: refused" \
		"$(mval 'sockpulse_tcp_connect_failures_total{reason="refused"}' "$FINAL")" \
		"$(churn refused)"
	# connections whose end never reached the agent: socket-table walks found them gone
	UNOBS=$(mval sockpulse_lease_unobserved_total "$FINAL")
	# Resets are not compared one to one: refusals, unread data at close and the kernel's
	# reset at keepalive death add their own.
	echo "agent: resets received $(mval 'sockpulse_tcp_resets_total{direction="received"}' "$FINAL")," \
		"sent $(mval 'sockpulse_tcp_resets_total{direction="sent"}' "$FINAL");" \
		"lease expirations $(msum sockpulse_lease_expirations_total "$FINAL")," \
		"unobserved ends $UNOBS;" \
		"log: $(mval sockpulse_log_lines_total "$FINAL") lines," \
		"$(mval sockpulse_log_rotations_total "$FINAL") rotations," \
		"$(mval sockpulse_log_lines_dropped_total "$FINAL") dropped"
	[ "${UNOBS:-0}" = 0 ] || NOTES+=("$UNOBS connection ends unobserved (found gone by the socket-table walk)")
else
	NOTES+=("final scrape failed: no cross-check")
fi

# A keepalive death the agent did not call one: what did it say about that socket? (Only the
# log files not yet rotated away can tell.)
if [ ${#NOTES[@]} -gt 0 ] && [ -s "$WORK/ka-cookies" ]; then
	cat "$WORK"/log/events.jsonl* 2>/dev/null | jq -c --slurpfile ks <(cat "$WORK/ka-cookies") '
		select(.sockpulse.sock as $s | $ks | index($s))
		| {sock: .sockpulse.sock, action: .event.action, old: .sockpulse.old_state,
		   new: .sockpulse.new_state, err: .error.code}' >"$WORK/ka-lines" 2>/dev/null
	jq -r --slurpfile ks <(cat "$WORK/ka-cookies") -s '
		[.[] | select(.action == "tcp-keepalive-timeout") | .sock] as $seen
		| [.[] | .sock] as $logged
		| $ks[] | select(($logged | index(.)) and (($seen | index(.)) | not))' "$WORK/ka-lines" |
		while read -r k; do
			echo "keepalive death without tcp-keepalive-timeout, socket $k:"
			jq -c "select(.sock == $k)" "$WORK/ka-lines" | sed 's/^/  | /'
		done
fi

if [ -s "$WORK/unexpected.txt" ]; then
	echo "unexpected churn outcomes (first 12 lines):"
	head -n 12 "$WORK/unexpected.txt" | sed 's/^/  | /'
fi

# stderr lines that are neither start-up nor the exit summary
grep -Ev '^sockpulse: (connect hook:|ready:|summary:)' "$WORK/agent.err" >"$WORK/errors" || true
NERR=$(wc -l <"$WORK/errors")
SUM_LOST=$(sed -n 's/.*summary: lost \([0-9]*\):.*/\1/p' "$WORK/agent.err" | head -n1)
LAST_LOST=$(awk 'END { print $6 + 0 }' "$SAMPLES")
if [ -s "$FINAL" ]; then
	LAST_LOST=$(msum sockpulse_events_lost_total "$FINAL")
fi
[ "$NERR" -eq 0 ] || {
	echo "agent stderr, unexpected lines ($NERR, first 5):"
	head -n 5 "$WORK/errors" | sed 's/^/  | /'
}

# First third against last third of the samples. Fds are compared by their floor: a sample
# taken while a /metrics scrape is being served counts its connection, a leak raises the floor.
read -r N R1 R3 FMIN1 FMIN3 FMAX1 FMAX3 < <(awk '{ r[NR] = $2; f[NR] = $3 }
	END { k = int(NR / 3); if (k < 1) { print NR, 0, 0, 0, 0, 0, 0; exit }
	      n1 = f[1]; n3 = f[NR]
	      for (i = 1; i <= k; i++) { r1 += r[i]; if (f[i] > m1) m1 = f[i]; if (f[i] < n1) n1 = f[i] }
	      for (i = NR - k + 1; i <= NR; i++) {
		      r3 += r[i]; if (f[i] > m3) m3 = f[i]; if (f[i] < n3) n3 = f[i] }
	      printf "%d %.0f %.0f %d %d %d %d\n", NR, r1 / k, r3 / k, n1, n3, m1, m3 }' \
	"$SAMPLES")
VERDICT=PASS
REASONS=()
if [ "$N" -lt 3 ]; then
	VERDICT=INCONCLUSIVE
	REASONS+=("only $N samples: too short to compare thirds")
else
	slack=$(awk -v r="$R1" -v s="$RSS_SLACK_KB" 'BEGIN { p = r * 0.02; printf "%.0f", (p > s ? p : s) }')
	if [ $((R3 - R1)) -gt "$slack" ]; then
		VERDICT=FAIL
		REASONS+=("RSS grew $((R3 - R1)) kB (first third $R1 kB, last third $R3 kB; slack $slack kB)")
	else
		REASONS+=("RSS flat (first third $R1 kB, last third $R3 kB)")
	fi
	if [ "$FMIN3" -gt "$FMIN1" ]; then
		VERDICT=FAIL
		REASONS+=("fds grew (fewest in the first third $FMIN1, in the last third $FMIN3)")
	else
		REASONS+=("fds flat (fewest $FMIN1 -> $FMIN3, most $FMAX1 -> $FMAX3)")
	fi
fi
if [ "${LAST_LOST:-0}" -ne 0 ] || [ "${SUM_LOST:-0}" -ne 0 ]; then
	VERDICT=FAIL
	REASONS+=("lost records: metrics $LAST_LOST, exit summary ${SUM_LOST:-none}")
else
	REASONS+=("0 lost")
fi
[ -n "$SUM_LOST" ] || {
	VERDICT=FAIL
	REASONS+=("no exit summary on stderr")
}
if [ "$NERR" -ne 0 ]; then
	VERDICT=FAIL
	REASONS+=("$NERR unexpected stderr lines")
else
	REASONS+=("no errors on stderr")
fi
if [ "${AGENT_RC:-x}" != 0 ]; then
	VERDICT=FAIL
	REASONS+=("agent exit status ${AGENT_RC:-unknown} on SIGTERM")
fi
if [ ${#NOTES[@]} -gt 0 ]; then
	[ "$VERDICT" = PASS ] && VERDICT=WARN
	REASONS+=("cross-check differs: ${NOTES[*]}")
fi
[ "$(churn unexpected)" = 0 ] || REASONS+=("note: $(churn unexpected) churn steps had unexpected outcomes (load on the host?)")
line=
for r in "${REASONS[@]}"; do
	line+="${line:+; }$r"
done
echo "verdict: $VERDICT: $line"
exit 0
