#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Connection-storm benchmark of the kernel event pipeline: how much loopback TCP storms slow
# down while sockpulse (and, for comparison, libbpf-tools' tcpstates) watches them, how many
# events per second the tracer writes, how many it loses, how much CPU the tracer process spends
# per event it writes, and what each BPF program costs per run. Two storms (tools/storm.c):
# "fin", connections that send and echo BENCH_PAYLOAD bytes and close normally (10 state changes
# each, TIME_WAIT), and "rst", short connections aborted with SO_LINGER 0 (6 state changes, no
# payload by default), the most state changes per second. In each round, for each storm: the
# storm alone, then under each tracer in turn. At the end, tables of medians over the rounds, and
# the lease engine's own numbers (build/tools/bench_engine): `make bench` prints everything
# README's "Performance" section shows.
#
# Tracers: "floor" is tools/floor (tools/floor.bpf.c): one ring record with the socket cookie per
# state change and nothing else, drained every 100 ms, the least a tracer of TCP state changes
# can cost; every tracer's ratio is also given minus the floor's in the same round.
# "floor-storage", "floor-lru", "floor-lru-percpu" and "floor-hash" are the floor plus a
# per-socket entry kept in the kernel that way (floor --keep): what keeping socket state costs,
# way by way, to choose where sockpulse keeps its own; "floor-probe-storage" and
# "floor-probe-slots", the floor plus inbound activity coalesced per socket (floor --probe), in
# socket storage or in a fixed array of slots; "floor-hook-syscalls" and "floor-hook-cgroup", the
# floor plus connect/accept hooks that do nothing (floor --hook): the syscall tracepoints, which
# send every syscall of every task down the traced path while attached, or cgroup connect
# programs on the root cgroup, which run for connect() only (all opt-in, through BENCH_TRACERS).
# "agent" is
# `sockpulse agent` logging every transition to a JSON lines file (its default actions: all,
# tcp-activity included; no rotation, metrics off); "watch" is `sockpulse watch --json` to a file;
# "tcpstates" is libbpf-tools' tcpstates to a file; "baseline" is the agent of another build
# (BENCH_BASELINE), run the same way in the same rounds, so a change is measured against what it
# replaces on the same machine at the same time.
#
# Attribution (BENCH_ABLATE=1): the agent again, once per part with that part switched off, in
# the same rounds. A part's share of the agent's overhead (1 - ratio) is how much of it goes away
# with the part off. The parts inside BPF programs are builds of their own (make ablate:
# build/ablate/<part>/sockpulse, compiled with -DSP_ABLATE_NO_<PART>); the others are switched
# when the agent starts, by SOCKPULSE_ABLATE=<part> in its environment (user/engine/ablate.h), which is
# for this benchmark only.
#
# The storm runs in a network namespace this script creates and removes, so the host's port range,
# TIME_WAIT table and sysctls stay untouched. The tracers run in the host namespace: they see
# every namespace anyway.
#
# Informational: exits 0 when it ran, whatever the numbers; 1 with a one-line reason when it could
# not run; 2 on bad usage; 130 when interrupted.
set -euo pipefail

usage() {
	cat <<EOF
Usage: tools/bench.sh [--out DIR]

  --out DIR   build directory holding sockpulse and tools/storm (default: build)

Environment:
  BENCH_ROUNDS=3        rounds; each runs each storm alone, then under each tracer (each
                        round starting one tracer further down the list)
  BENCH_SECONDS=5       storm duration per run, seconds (a run is rounds x storms x
                        (1 + tracers) x this)
  BENCH_STORM=both      fin, rst or both: which storms (fin: normal close, 10 state changes
                        per connection; rst: abort with SO_LINGER 0, 6 state changes)
  BENCH_WORKERS=        storm client processes (default: storm's, one per CPU)
  BENCH_PAYLOAD=1       bytes each connection of the fin storm sends and gets echoed
  BENCH_RST_PAYLOAD=0   the same for the rst storm (0: connect, then abort)
  BENCH_TRACERS="floor agent tcpstates"   tracers measured, in this order: floor, agent,
                        baseline, watch, tcpstates ("baseline" is added by itself when
                        BENCH_BASELINE is set; "floor" is the bare program of tools/floor)
                        also: floor-storage, floor-lru, floor-lru-percpu, floor-hash: the
                        floor plus a per-socket entry kept that way (tools/floor --keep);
                        floor-probe-storage, floor-probe-slots: the floor plus activity
                        coalesced per socket that way (tools/floor --probe);
                        floor-hook-syscalls, floor-hook-cgroup: the floor plus connect/accept
                        hooks that do nothing (tools/floor --hook)
  BENCH_BASELINE=       another sockpulse binary (an older build, say) measured as "baseline"
  BENCH_AGENT_ARGS=     extra arguments for 'sockpulse agent' and 'sockpulse watch'
  BENCH_ABLATE=0        1: attribution runs, the agent with one part off each (make ablate
                        builds what they need; BENCH_ABLATE=1 make bench does it):
                          storage    the socket table (sk_info_get finds nothing; build-time)
                          syscalls   the connect/accept hooks (programs not loaded)
                          tcp_probe  the per-segment program (not loaded)
                          owners     the accept() hook's owner update (build-time)
                          engine     the lease and spike engine (and its lines)
                          format     lines counted instead of formatted (nothing written)
                          write      lines formatted, then discarded
                        The agent reads the run-time ones from SOCKPULSE_ABLATE=part[,part].
  BENCH_ABLATE_PARTS="storage syscalls tcp_probe owners engine format write"   which of them
  BENCH_ENGINE_LEASES=1000000   leases for build/tools/bench_engine (0: skip the engine)
  BENCH_TCPSTATES=/usr/sbin/tcpstates   comparison tracer; skipped when not installed
  BENCH_KEEP=0          1: keep the tracers' output files and print where they are
  BENCH_QUIET_STEAL=5   "quiet ratio": the median over rounds where the hypervisor stole less
                        than this % of CPU time in both the tracer's run and the storm alone
  BENCH_PAGE_REPORTING=keep   on a virtual machine that reports free pages to its hypervisor
                        (virtio-balloon free page reporting), a page a tracer's output file
                        takes may first be faulted in by the hypervisor: the write's cost then
                        moves from run to run (several times over, measured). off: reporting is
                        off for the run (page_reporting.page_reporting_order raised, restored at
                        exit) and BENCH_WARM_MB of memory is touched and freed first, so the
                        files reuse pages the hypervisor still backs. keep: a note says it is on.
  BENCH_WARM_MB=2048    with BENCH_PAGE_REPORTING=off: memory touched and freed at the start

Needs root (network namespaces, BPF, sysctls), ip, jq and bpftool.
Numbers vary with the load on the machine: compare rows of one run, not runs of different days.
Exit codes: 0 ran; 1 could not run (reason on stderr); 2 bad usage; 130 interrupted.
EOF
}

usage_error() {
	echo "bench: $*" >&2
	exit 2
}

OUT=build
while [ $# -gt 0 ]; do
	case "$1" in
	--out)
		[ $# -ge 2 ] || usage_error "--out needs a directory"
		OUT=$2
		shift 2
		;;
	--out=*)
		OUT=${1#--out=}
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage_error "unknown argument '$1' (see --help)"
		;;
	esac
done

ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
STORM_KIND=${BENCH_STORM:-both}
RST_PAYLOAD=${BENCH_RST_PAYLOAD:-0}
WORKERS=${BENCH_WORKERS:-}
PAYLOAD=${BENCH_PAYLOAD:-1}
AGENT_ARGS=${BENCH_AGENT_ARGS:-}
TCPSTATES=${BENCH_TCPSTATES:-/usr/sbin/tcpstates}
KEEP=${BENCH_KEEP:-0}
WANT_TRACERS=${BENCH_TRACERS-floor agent tcpstates}
BASELINE=${BENCH_BASELINE:-}
ENGINE_LEASES=${BENCH_ENGINE_LEASES:-1000000}
QUIET_STEAL=${BENCH_QUIET_STEAL:-5}
ABLATE=${BENCH_ABLATE:-0}
ABLATE_PARTS=${BENCH_ABLATE_PARTS:-storage syscalls tcp_probe owners engine format write}
PAGE_REPORTING=${BENCH_PAGE_REPORTING:-keep}
WARM_MB=${BENCH_WARM_MB:-2048}
PR_ORDER=/sys/module/page_reporting/parameters/page_reporting_order

AGENT=$OUT/sockpulse
STORM=$OUT/tools/storm
FLOOR=$OUT/tools/floor
ENGINE=$OUT/tools/bench_engine
NS=sp-bench-$$
READY_TIMEOUT_S=30
TCPSTATES_SETTLE_S=2
STOP_TIMEOUT_S=10

die() {
	echo "bench: cannot run: $*" >&2
	exit 1
}

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || usage_error "BENCH_ROUNDS='$ROUNDS': want an integer >= 1"
if ! [[ $SECONDS_PER_RUN =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
	! awk -v s="$SECONDS_PER_RUN" 'BEGIN { exit !(s > 0) }'; then
	usage_error "BENCH_SECONDS='$SECONDS_PER_RUN': want seconds > 0"
fi
[ -z "$WORKERS" ] || [[ $WORKERS =~ ^[1-9][0-9]*$ ]] ||
	usage_error "BENCH_WORKERS='$WORKERS': want an integer >= 1"
[[ $PAYLOAD =~ ^[1-9][0-9]*$ ]] || usage_error "BENCH_PAYLOAD='$PAYLOAD': want an integer >= 1"
[[ $RST_PAYLOAD =~ ^[0-9]+$ ]] || usage_error "BENCH_RST_PAYLOAD='$RST_PAYLOAD': want an integer"
case $STORM_KIND in
fin | rst) STORMS=("$STORM_KIND") ;;
both) STORMS=(fin rst) ;;
*) usage_error "BENCH_STORM='$STORM_KIND': want fin, rst or both" ;;
esac
[[ $ENGINE_LEASES =~ ^[0-9]+$ ]] || usage_error "BENCH_ENGINE_LEASES='$ENGINE_LEASES': want an integer"
[[ $QUIET_STEAL =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
	usage_error "BENCH_QUIET_STEAL='$QUIET_STEAL': want a percentage"
case $PAGE_REPORTING in
keep | off) ;;
*) usage_error "BENCH_PAGE_REPORTING='$PAGE_REPORTING': want keep or off" ;;
esac
[[ $WARM_MB =~ ^[0-9]+$ ]] || usage_error "BENCH_WARM_MB='$WARM_MB': want megabytes"
KNOWN_TRACERS="floor floor-storage floor-lru floor-lru-percpu floor-hash floor-probe-storage
floor-probe-slots floor-hook-syscalls floor-hook-cgroup agent baseline watch tcpstates"
for t in $WANT_TRACERS; do
	[[ " $(echo $KNOWN_TRACERS) " == *" $t "* ]] ||
		usage_error "BENCH_TRACERS: unknown tracer '$t' ($(echo $KNOWN_TRACERS | sed 's/ /, /g'))"
done
ABLATED=
case $ABLATE in
0) ;;
1)
	for p in $ABLATE_PARTS; do
		case $p in
		storage | syscalls | tcp_probe | owners | engine | format | write) ;;
		*) usage_error "BENCH_ABLATE_PARTS: unknown part '$p' (see --help)" ;;
		esac
		ABLATED+=" no-$p"
	done
	# right after the agent: the reference of every share
	case " $WANT_TRACERS " in
	*" agent "*) WANT_TRACERS=" $WANT_TRACERS "
		WANT_TRACERS=${WANT_TRACERS/ agent / agent$ABLATED } ;;
	*) WANT_TRACERS="agent$ABLATED $WANT_TRACERS" ;;
	esac
	;;
*) usage_error "BENCH_ABLATE='$ABLATE': want 0 or 1" ;;
esac
if [ -n "$BASELINE" ]; then
	[ -x "$BASELINE" ] || usage_error "BENCH_BASELINE='$BASELINE': not an executable"
	# right after the agent, so the two run back to back in every round
	case " $WANT_TRACERS " in
	*" baseline "*) ;;
	*" agent "*)
		WANT_TRACERS=" $WANT_TRACERS "
		WANT_TRACERS=${WANT_TRACERS/ agent / agent baseline }
		;;
	*) WANT_TRACERS="baseline $WANT_TRACERS" ;;
	esac
elif [[ " $WANT_TRACERS " == *" baseline "* ]]; then
	usage_error "BENCH_TRACERS names baseline: set BENCH_BASELINE to its sockpulse binary"
fi

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF, sysctls)"
for cmd in ip jq bpftool sysctl awk; do
	command -v "$cmd" >/dev/null || die "'$cmd' not found (make deps installs it)"
done
[ -x "$STORM" ] || die "$STORM not built (make $STORM)"

TRACERS=()
for t in $WANT_TRACERS; do
	case $t in
	agent | watch)
		if [ -x "$AGENT" ]; then
			TRACERS+=("$t")
		else
			echo "bench: warning: $AGENT not built: measuring without sockpulse $t" >&2
		fi
		;;
	baseline)
		TRACERS+=(baseline)
		;;
	no-storage | no-owners)
		[ -x "$OUT/ablate/${t#no-}/sockpulse" ] ||
			die "$OUT/ablate/${t#no-}/sockpulse not built (make ablate)"
		TRACERS+=("$t")
		;;
	no-*)
		[ -x "$AGENT" ] || die "$AGENT not built"
		TRACERS+=("$t")
		;;
	floor | floor-*)
		if [ -x "$FLOOR" ]; then
			TRACERS+=("$t")
		else
			echo "bench: warning: $FLOOR not built: measuring without the floor" >&2
		fi
		;;
	tcpstates)
		if [ -x "$TCPSTATES" ]; then
			TRACERS+=(tcpstates)
		else
			echo "bench: note: no $TCPSTATES (Debian libbpf-tools): no tcpstates comparison" >&2
		fi
		;;
	esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sp-bench.XXXXXX")
STATS_PREV=$(sysctl -n kernel.bpf_stats_enabled)
PR_PREV= # page_reporting_order to restore, when the bench changed it
NS_CREATED=0
TRACER_PID=

stop_tracer() {
	local pid=$TRACER_PID i

	[ -n "$pid" ] || return 0
	TRACER_PID=
	kill -INT "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench: warning: tracer $pid ignored SIGINT: killed" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	stop_tracer
	sysctl -q -w kernel.bpf_stats_enabled="$STATS_PREV" >/dev/null 2>&1 || true
	[ -z "$PR_PREV" ] || echo "$PR_PREV" >"$PR_ORDER" 2>/dev/null ||
		echo "bench: warning: could not restore $PR_ORDER to $PR_PREV" >&2
	[ "$NS_CREATED" -eq 0 ] || ip netns del "$NS" 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then
		echo "bench: outputs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

# Free page reporting (see --help, BENCH_PAGE_REPORTING): its order is above the largest page
# block when it is off; a value the kernel refuses leaves it as it was.
if [ -r "$PR_ORDER" ]; then
	pr_now=$(cat "$PR_ORDER")
	if [ "$PAGE_REPORTING" = off ]; then
		for v in 64 11 10; do
			if echo "$v" >"$PR_ORDER" 2>/dev/null; then
				PR_PREV=$pr_now
				break
			fi
		done
		[ -n "$PR_PREV" ] || die "cannot raise $PR_ORDER (BENCH_PAGE_REPORTING=off)"
		echo "bench: free page reporting to the hypervisor off for the run" \
			"(page_reporting_order $pr_now -> $(cat "$PR_ORDER")); touching ${WARM_MB} MiB" >&2
		if [ "$WARM_MB" -gt 0 ]; then # in tmpfs: memory, no disk
			warm=$(mktemp /dev/shm/sp-bench-warm.XXXXXX) || die "cannot create a file in /dev/shm"
			dd if=/dev/zero of="$warm" bs=1M count="$WARM_MB" status=none || {
				rm -f "$warm"
				die "cannot write $WARM_MB MiB to $warm (BENCH_WARM_MB)"
			}
			rm -f "$warm"
		fi
	else
		echo "bench: note: this machine reports free pages to its hypervisor" \
			"(page_reporting_order $pr_now): a tracer's file writes may fault pages in at the" \
			"hypervisor, which moves their cost from run to run; BENCH_PAGE_REPORTING=off" \
			"measures without it" >&2
	fi
fi

ip netns add "$NS" || die "ip netns add $NS failed"
NS_CREATED=1
ip -n "$NS" link set lo up || die "cannot bring up lo in $NS"
# A wide port range and TIME_WAIT reuse let the storm run for minutes without running out of
# ephemeral ports; both are per-namespace, so the host keeps its own settings.
ip netns exec "$NS" sysctl -q -w net.ipv4.ip_local_port_range="1024 65535" \
	net.ipv4.tcp_tw_reuse=1 >/dev/null || die "cannot set sysctls in $NS"

# "steal total" CPU ticks from /proc/stat: time the hypervisor gave to someone else.
steal_sample() {
	awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t; exit }' /proc/stat
}

# Runs the storm once in the namespace; its JSON summary lands in $WORK/storm.json, the share of
# CPU time stolen by the hypervisor meanwhile in $STEAL (percent): on a virtual machine that
# share moves the storm's rate more than any tracer, and says how far to trust a round.
# Everything that may die runs in the main shell, never in $(...): the EXIT trap must see it.
run_storm() {
	local args=(--duration "$SECONDS_PER_RUN" --close "$1" --json) rc=0 s0 s1

	if [ "$1" = rst ]; then
		args+=(--payload "$RST_PAYLOAD")
	else
		args+=(--payload "$PAYLOAD")
	fi

	[ -z "$WORKERS" ] || args+=(--workers "$WORKERS")
	s0=$(steal_sample)
	ip netns exec "$NS" "$STORM" "${args[@]}" >"$WORK/storm.json" 2>"$WORK/storm.err" || rc=$?
	s1=$(steal_sample)
	STEAL=$(awk -v a="$s0" -v b="$s1" 'BEGIN { split(a, x); split(b, y); t = y[2] - x[2]
		printf "%.1f", (t > 0 ? (y[1] - x[1]) * 100 / t : 0) }')
	case $rc in
	0) ;;
	130) exit 130 ;;
	*)
		cat "$WORK/storm.err" >&2
		die "storm failed (exit $rc)"
		;;
	esac
	if [ "$(jq -r '.error_total + .short_replies' "$WORK/storm.json")" != 0 ]; then
		echo "bench: note: storm errors: $(jq -c '.errors' "$WORK/storm.json")" >&2
	fi
}

# Program ids a process holds (prog fds and link fds both name their prog_id in fdinfo): this
# bpftool may be built without pid reporting, /proc always has it.
prog_ids_of() {
	{ grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null || true; } |
		awk '{ print $2 }' | sort -un | paste -sd, -
}

# The tracer's programs: those its process holds. Only when none are found (a tracer that closes
# its fds after attaching) sockpulse's programs by their "sp_" name prefix: the prefix alone would
# also count other agents running at the same time (tests, say).
prog_snapshot() {
	bpftool prog show --json | jq -c --arg ids "$1" --arg prefix "$2" '
		($ids | split(",") | map(select(. != "") | tonumber)) as $mine
		| [.[] | select(if $mine != [] then (.id as $id | $mine | index($id))
				else ($prefix != "" and ((.name // "") | startswith($prefix))) end)
		  | {id, name: (.name // ("id" + (.id | tostring))),
		     ns: (.run_time_ns // 0), cnt: (.run_cnt // 0)}]'
}

# CPU time of a process in seconds (user + system), all its threads: the scheduler's own count
# in ns (/proc/PID/task/*/schedstat), not /proc/PID/stat's 10 ms ticks, which round a light
# tracer (the floor) to nothing. Falls back to the ticks where schedstat is missing.
cpu_seconds() {
	local f=(/proc/"$1"/task/*/schedstat)

	if [ -r "${f[0]}" ]; then
		awk '{ ns += $1 } END { printf "%.6f", ns / 1e9 }' "${f[@]}" 2>/dev/null || echo 0
		return
	fi
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' \
		/proc/"$1"/stat 2>/dev/null || echo 0
}

# User and system CPU ticks of a process, all threads (/proc/PID/stat utime, stime): only their
# ratio is used, to split cpu_seconds' exact total into the tracer's own work and the kernel's
# on its behalf (its write() into the page cache, mostly).
cpu_ticks() {
	awk '{ sub(/^.*\) /, ""); print $12, $13 }' /proc/"$1"/stat 2>/dev/null || echo "0 0"
}

# start_sockpulse OUT ERR MODE [BINARY [ABLATE]]: `sockpulse watch --json` with stdout to OUT,
# or `sockpulse agent` with its log in OUT (never rotated: every line counts; /metrics off);
# ABLATE: the parts it is told to switch off at start.
start_sockpulse() {
	local out=$1 err=$2 mode=$3 bin=${4:-$AGENT} ablate=${5:-} i
	local -a extra=()

	# shellcheck disable=SC2206 # word splitting of the extra flags is intended
	[ -z "$AGENT_ARGS" ] || extra=($AGENT_ARGS)
	: >"$err" # before the tracer opens it: the wait below reads it at once
	if [ "$mode" = agent ]; then
		env --default-signal=INT SOCKPULSE_ABLATE="$ablate" "$bin" agent --log "$out" --log-max-size 0 --metrics off \
			"${extra[@]}" >/dev/null 2>"$err" &
	else
		env --default-signal=INT "$bin" watch --json "${extra[@]}" >"$out" 2>"$err" &
	fi
	TRACER_PID=$!
	for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
		grep -q ready "$err" && return 0
		if ! kill -0 "$TRACER_PID" 2>/dev/null; then
			TRACER_PID=
			echo "bench: sockpulse exited before printing 'ready'; its stderr:" >&2
			sed 's/^/  | /' "$err" >&2
			die "the sockpulse agent did not start"
		fi
		sleep 0.1
	done
	echo "bench: sockpulse printed no 'ready' line within ${READY_TIMEOUT_S}s; its stderr:" >&2
	sed 's/^/  | /' "$err" >&2
	die "the sockpulse agent did not become ready"
}

start_agent() { start_sockpulse "$1" "$2" agent; }
start_baseline() { start_sockpulse "$1" "$2" agent "$BASELINE"; }
start_watch() { start_sockpulse "$1" "$2" watch; }

# The agent with one part off: a build of its own for the parts inside BPF programs.
start_ablated() {
	local part=${3#no-}

	case $part in
	storage | owners) start_sockpulse "$1" "$2" agent "$OUT/ablate/$part/sockpulse" ;;
	*) start_sockpulse "$1" "$2" agent "$AGENT" "$part" ;;
	esac
}

# The floor prints its counts as one JSON object on stdout when it stops. WAY: none, a --keep
# way, probe-W for --probe W or hook-W for --hook W.
start_floor() {
	local out=$1 err=$2 way=${3:-none} i args=()

	case $way in
	probe-*) args=(--probe "${way#probe-}") ;;
	hook-*) args=(--hook "${way#hook-}") ;;
	*) args=(--keep "$way") ;;
	esac
	: >"$err"
	env --default-signal=INT "$FLOOR" "${args[@]}" >"$out" 2>"$err" &
	TRACER_PID=$!
	for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
		grep -q ready "$err" && return 0
		if ! kill -0 "$TRACER_PID" 2>/dev/null; then
			TRACER_PID=
			sed 's/^/  | /' "$err" >&2
			die "the floor ($FLOOR) did not start"
		fi
		sleep 0.1
	done
	die "the floor printed no 'ready' line within ${READY_TIMEOUT_S}s"
}

start_tcpstates() {
	local out=$1 err=$2

	env --default-signal=INT "$TCPSTATES" >"$out" 2>"$err" &
	TRACER_PID=$!
	sleep "$TCPSTATES_SETTLE_S" # it says nothing when ready: give it time to load and attach
	if ! kill -0 "$TRACER_PID" 2>/dev/null; then
		TRACER_PID=
		sed 's/^/  | /' "$err" >&2
		die "tcpstates exited at start"
	fi
}

# Tracers start through env --default-signal=INT: a non-interactive shell starts background jobs
# with SIGINT ignored, and SIGINT is how both tracers are asked to flush and exit.

# Lines the tracer wrote that are not events.
header_lines() {
	case $1 in
	tcpstates) echo 1 ;; # column header
	*) echo 0 ;;
	esac
}

events_lost() {
	local tool=$1 out=$2 err=$3

	case $tool in
	no-*) # format and write may be off: the agent's exit summary has the count
		{ grep -o 'summary: lost [0-9]*' "$err" || true; } |
			awk '{ n += $3 } END { print n + 0 }'
		;;
	agent | baseline | watch)
		{ grep -F '"events-lost"' "$out" 2>/dev/null || true; } |
			jq -s 'map(.sockpulse.lost.count // 0) | add // 0'
		;;
	floor | floor-*) jq -s 'map(.lost) | add // 0' "$out" ;;
	tcpstates) # libbpf-tools reports perf buffer losses on stderr
		{ grep -o 'lost [0-9]* events' "$err" || true; } |
			awk '{ n += $2 } END { print n + 0 }'
		;;
	esac
}

# measure_tracer TOOL ROUND STORM: one storm under a tracer; leaves a JSON object with the
# measurements in $MEASURED.
measure_tracer() {
	local tool=$1 storm_kind=$3 out="$WORK/$1.$3.r$2.out" err="$WORK/$1.$3.r$2.err"
	local ids before after storm lines0 lines1 cpu0 cpu1 ticks0 ticks1 pid lost events prefix=

	sysctl -q -w kernel.bpf_stats_enabled=1 >/dev/null ||
		die "cannot enable kernel.bpf_stats_enabled"
	case $tool in
	no-*) start_ablated "$out" "$err" "$tool" ;;
	floor-*) start_floor "$out" "$err" "${tool#floor-}" ;;
	*) "start_$tool" "$out" "$err" ;;
	esac
	pid=$TRACER_PID
	ids=$(prog_ids_of "$pid")
	case $tool in tcpstates | floor | floor-*) ;; *) prefix=sp_ ;; esac
	before=$(prog_snapshot "$ids" "$prefix")
	touch "$out" # the agent creates its log at its first line
	lines0=$(wc -l <"$out")
	cpu0=$(cpu_seconds "$pid")
	ticks0=$(cpu_ticks "$pid")
	run_storm "$storm_kind"
	storm=$(cat "$WORK/storm.json")
	after=$(prog_snapshot "$ids" "$prefix")
	sleep 1 # let the tracer drain what the storm left in its buffers
	# CPU up to here: the events of the storm, drained (the tracer is idle otherwise)
	cpu1=$(cpu_seconds "$pid")
	ticks1=$(cpu_ticks "$pid")
	stop_tracer
	sysctl -q -w kernel.bpf_stats_enabled="$STATS_PREV" >/dev/null || true
	[ "$lines0" -ge "$(header_lines "$tool")" ] || lines0=$(header_lines "$tool")
	lines1=$(wc -l <"$out")
	lost=$(events_lost "$tool" "$out" "$err")
	events=$((lines1 - lines0))
	case $tool in floor | floor-*) events=$(jq -s 'map(.records) | add // 0' "$out") ;; esac
	# with formatting or the write off the log holds its start line only: no per-line figures
	case $tool in no-format | no-write) events=0 ;; esac
	[ "$KEEP" = 1 ] || rm -f "$out"

	MEASURED=$(jq -nc --argjson storm "$storm" \
		--argjson before "$before" --argjson after "$after" \
		--argjson events "$events" --argjson lost "${lost:-0}" \
		--argjson steal "$STEAL" \
		--argjson sys_frac "$(awk -v a="$ticks0" -v b="$ticks1" 'BEGIN {
			split(a, x, " "); split(b, y, " "); u = y[1] - x[1]; k = y[2] - x[2]
			print (u + k > 0) ? k / (u + k) : 0 }')" \
		--argjson cpu "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" '
		($before | map({key: (.id | tostring), value: .}) | from_entries) as $b
		| [$after[] | . as $a | ($b[.id | tostring] // {ns: 0, cnt: 0}) as $p
		   | {name, ns: ($a.ns - $p.ns), cnt: ($a.cnt - $p.cnt)}] as $progs
		| {conn_s: $storm.conn_per_s, conns: $storm.connections, secs: $storm.elapsed_s,
		   events: $events, lost: $lost, cpu: $cpu, steal: $steal,
		   cpu_ns_ev: (if $events > 0 then $cpu * 1e9 / $events else null end),
		   sys_ns_ev: (if $events > 0 then $cpu * $sys_frac * 1e9 / $events else null end),
		   bpf_ns: ($progs | map(.ns) | add // 0),
		   progs: [$progs[] | select(.cnt > 0) | {name, mean: (.ns / .cnt), cnt}]}')
}

ROWS=()
# one object per run: {round, storm, tool, alone, alone_steal, m}; m is null for the storm alone
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

# add_row ROUND STORM ALONE TOOL [M [STEAL]]: one table row; M is the tracer's JSON, empty for the
# storm alone; STEAL the alone run's steal %.
add_row() {
	local round=$1 storm_kind=$2 alone=$3 tool=$4 m=${5:-} steal=${6:-0}

	if [ -z "$m" ]; then
		jq -nc --argjson round "$round" --arg storm "$storm_kind" --argjson alone "$alone" \
			--argjson steal "$steal" '{round: $round, storm: $storm, tool: "alone",
				alone: $alone, alone_steal: $steal, m: null}' >>"$RESULTS"
		ROWS+=("$(printf '%-5s %-5s %-14s %9.0f %9s %6s %9s %7s %7s %6s %9s %8s %6.1f  %s' \
			"$round" "$storm_kind" "$tool" "$alone" - - - - - - - - "$steal" -)")
		return
	fi
	jq -nc --argjson round "$round" --arg storm "$storm_kind" --arg tool "$tool" \
		--argjson alone "$alone" --argjson m "$m" --argjson alone_steal "$steal" \
		'{round: $round, storm: $storm, tool: $tool, alone: $alone,
		  alone_steal: $alone_steal, m: $m}' >>"$RESULTS"
	ROWS+=("$(jq -r --argjson alone "$alone" --arg round "$round" --arg tool "$tool" \
		--arg storm "$storm_kind" '
		[$round, $storm, $tool, $alone, .conn_s,
		 (if $alone > 0 then .conn_s / $alone else "-" end),
		 .events / .secs, (if .conns > 0 then .events / .conns else "-" end),
		 .lost, .cpu / .secs * 100, (.cpu_ns_ev // "-"),
		 (if .conns > 0 then .bpf_ns / .conns else "-" end), .steal,
		 ([.progs[] | "\(.name)=\(.mean | round)"] | join(" ")
		  | if . == "" then "-" else . end)]
		| @tsv' <<<"$m" |
		awk -F'\t' 'function f(v, fmt) { return v == "-" ? v : sprintf(fmt, v) }
			{ printf "%-5s %-5s %-14s %9s %9s %6s %9s %7s %7s %6s %9s %8s %6s  %s\n",
				$1, $2, $3, f($4, "%.0f"), f($5, "%.0f"), f($6, "%.3f"),
				f($7, "%.0f"), f($8, "%.1f"), $9, f($10, "%.1f"), f($11, "%.0f"),
				f($12, "%.0f"), f($13, "%.1f"), $14 }')")
}

echo "bench: $ROUNDS round(s) x ${SECONDS_PER_RUN}s, storms: ${STORMS[*]}, in netns $NS," \
	"tracers: ${TRACERS[*]:-none}; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
	for storm_kind in "${STORMS[@]}"; do
		echo "bench: round $r/$ROUNDS, $storm_kind storm: alone" >&2
		run_storm "$storm_kind"
		alone=$(jq '.conn_per_s' "$WORK/storm.json")
		alone_steal=$STEAL
		add_row "$r" "$storm_kind" "$alone" alone "" "$STEAL"
		# Each round starts one tracer further on, so none is always the furthest from
		# the storm alone it is compared with while the load drifts.
		for ((i = 0; i < ${#TRACERS[@]}; i++)); do
			tool=${TRACERS[(i + r - 1) % ${#TRACERS[@]}]}
			echo "bench: round $r/$ROUNDS, $storm_kind storm: under $tool" >&2
			measure_tracer "$tool" "$r" "$storm_kind"
			add_row "$r" "$storm_kind" "$alone" "$tool" "$MEASURED" "$alone_steal"
		done
	done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# The lease engine alone (no kernel): renew, expiry, memory, spike detector.
ENGINE_OUT=
if [ "$ENGINE_LEASES" -gt 0 ]; then
	if [ -x "$ENGINE" ]; then
		echo "bench: lease engine: $ENGINE $ENGINE_LEASES" >&2
		ENGINE_OUT=$("$ENGINE" "$ENGINE_LEASES") || {
			echo "bench: warning: $ENGINE failed" >&2
			ENGINE_OUT=
		}
	else
		echo "bench: warning: $ENGINE not built: no engine numbers" >&2
	fi
fi

echo
echo "Per run:"
printf '%-5s %-5s %-14s %9s %9s %6s %9s %7s %7s %6s %9s %8s %6s  %s\n' round storm tracer "alone/s" \
	"with/s" ratio "events/s" "ev/conn" lost "cpu%" "cpu ns/ev" "bpf ns/c" "steal%" \
	"mean ns/run per BPF program"
printf '%s\n' "${ROWS[@]}"
echo

# Medians over the rounds, one row per tracer, then one row per BPF program.
echo "Summary: median of $ROUNDS round(s) x ${SECONDS_PER_RUN}s; machine: $(uname -r), $(nproc) CPUs," \
	"$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null);" \
	"load average (1, 5, 15 min) $LOAD_START at the start, $LOAD_END at the end"
# "- floor": the tracer's ratio minus the floor's in the same round and storm, median over the
# rounds.
jq -rs --argjson quiet "$QUIET_STEAL" '
	def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
		else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	def f(d): if . == null then "-" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
	def ratio: if .alone > 0 then .m.conn_s / .alone else null end;
	(["storm", "tracer", "conn/s", "ratio", "- floor", "quiet ratio (n)", "events/s", "lost",
	  "cpu ns/event", "of it kernel", "bpf ns/conn", "steal %"] | @tsv),
	(group_by(.storm) | sort_by(.[0].storm)[] | .[0].storm as $storm
	 | (map(select(.tool == "alone")) | map(.alone)) as $alone
	 | (map(select(.tool == "alone")) | map(.alone_steal)) as $alone_steal
	 | (map(select(.tool == "floor") | {key: (.round | tostring), value: ratio})
	    | from_entries) as $floor
	 | ([$storm, "alone", ($alone | median | f(0)), "1", "-", "-", "-", "-", "-", "-", "-",
	   ($alone_steal | median | f(1))] | @tsv),
	(map(select(.tool != "alone")) | group_by(.tool)
	 | sort_by(.[0].tool | {floor: 0, agent: 2, baseline: 4, watch: 5}[.]
		   // (if startswith("floor-") then 1 elif startswith("no-") then 3 else 6 end))[]
	 | [$storm, .[0].tool, (map(.m.conn_s) | median | f(0)),
	    (map(ratio // empty) | median | f(3)),
	    (if .[0].tool == "floor" then "-" else
	     (map(ratio as $r | $floor[.round | tostring] as $fl
		  | select($r != null and $fl != null) | $r - $fl) | median | f(3)) end),
	    ([.[] | select(.alone > 0 and .alone_steal < $quiet and .m.steal < $quiet) | ratio]
	     | "\(median | f(3)) (\(length))"),
	    (map(.m.events / .m.secs) | median | f(0)), (map(.m.lost) | add | tostring),
	    (map(.m.cpu_ns_ev // empty) | median | f(0)),
	    (map(.m.sys_ns_ev // empty) | median | f(0)),
	    (map(select(.m.conns > 0) | .m.bpf_ns / .m.conns) | median | f(0)),
	    (map(.m.steal) | median | f(1))] | @tsv))' \
	"$RESULTS" | column -t -s $'\t'
if [ "$ABLATE" = 1 ]; then
	echo
	echo "Attribution: the agent with one part off. gain = its ratio minus the whole agent's in" \
		"the same round (median over rounds); share = gain / (1 - the agent's ratio): the part" \
		"of the agent's overhead that goes away with the part; cpu % = the agent process's CPU" \
		"time over the storm's. Parts overlap (storage off also idles tcp_probe's and the" \
		"owners' work; format off also writes nothing; engine off also drops its lines): shares" \
		"need not add up to 100 %."
	jq -rs '
	def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
		else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	def f(d): if . == null then "-" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
	def ratio: if .alone > 0 then .m.conn_s / .alone else null end;
	(["storm", "run", "ratio", "gain", "share of overhead", "cpu %", "lost"] | @tsv),
	(group_by(.storm) | sort_by(.[0].storm)[] | .[0].storm as $storm
	 | (map(select(.tool == "agent") | {key: (.round | tostring), value: ratio})
	    | from_entries) as $agent
	 | (map(select(.tool == "agent") | ratio // empty) | median) as $agent_ratio
	 | (map(select(.tool == "floor" or .tool == "agent")) | group_by(.tool) | reverse[]
	    | [$storm, .[0].tool, (map(ratio // empty) | median | f(3)), "-", "-",
	       (map(.m.cpu / .m.secs * 100) | median | f(1)), (map(.m.lost) | add | tostring)]
	    | @tsv),
	 (map(select(.tool | startswith("no-"))) | group_by(.tool)[]
	  | (map(ratio as $r | $agent[.round | tostring] as $a
		 | select($r != null and $a != null) | $r - $a) | median) as $gain
	  | [$storm, .[0].tool, (map(ratio // empty) | median | f(3)), ($gain | f(3)),
	     (if $gain == null or $agent_ratio == null or $agent_ratio >= 1 then "-"
	      else "\($gain / (1 - $agent_ratio) * 100 | round) %" end),
	     (map(.m.cpu / .m.secs * 100) | median | f(1)), (map(.m.lost) | add | tostring)]
	  | @tsv))' "$RESULTS" | column -t -s $'\t'
fi
echo
echo "BPF programs, mean ns per run (median over rounds; runs per storm connection):"
jq -rs '
	def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
		else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	(["storm", "tracer", "program", "ns/run", "runs/conn"] | @tsv),
	([.[] | select(.m != null) | .storm as $s | .tool as $t | .m.conns as $c | .m.progs[]
	  | {s: $s, t: $t, name, mean, per: (.cnt / $c)}]
	 | group_by([.s, .t, .name])[]
	 | [.[0].s, .[0].t, .[0].name, (map(.mean) | median | round | tostring),
	    (map(.per) | median * 100 | round / 100 | tostring)] | @tsv)' "$RESULTS" |
	column -t -s $'\t'
if [ -n "$ENGINE_OUT" ]; then
	echo
	echo "Lease engine and line formatting (build/tools/bench_engine $ENGINE_LEASES, no kernel):"
	grab() { sed -n "$1" <<<"$ENGINE_OUT" | head -n1; }
	printf '  %-52s %s\n' \
		"lease renew, one at a time, random order" "$(grab 's/.*one at a time: *\([0-9.]*\) ns\/op random.*/\1 ns\/op/p')" \
		"lease renew, batches of 64 as the agent feeds" "$(grab 's/.*prefetch: *\([0-9.]*\) ns\/op random.*/\1 ns\/op/p')" \
		"lease create" "$(grab 's/.*create \([0-9.]*\) ns\/lease.*/\1 ns/p')" \
		"timer upkeep, all leases alive" "$(grab 's/.*all alive: \([0-9.]*\) ns per lease per second.*/\1 ns per lease per second/p')" \
		"expiry (suspect/expired verdict, emitted)" "$(grab 's/.*: \([0-9.]*\) ns per verdict.*/\1 ns per verdict/p')" \
		"memory" "$(grab 's/.*, \([0-9.]*\) bytes\/lease total held.*/\1 bytes\/lease/p')" \
		"spike detector" "$(grab 's/^spike: \([0-9.]*\) ns per connect event.*/\1 ns per connect event/p')" \
		"JSON line formatting, the storm's mix" "$(grab 's/^format: \([0-9.]*\) ns per JSON line.*/\1 ns per line/p')"
fi
echo
echo "columns: ratio = conn/s with the tracer / alone in the same round; - floor = that ratio" \
	"minus the floor's in the same round (median over rounds); cpu ns/ev = tracer" \
	"process CPU (all threads, /proc/PID/task/*/schedstat) from the storm's start until 1 s" \
	"after its end," \
	"divided by the lines it wrote (the floor: records it drained); of it kernel = the part the" \
	"kernel spent for it (system time over user + system, /proc/PID/stat: for the agent, its" \
	"write() into the page cache, mostly); bpf ns/c = BPF run time per storm connection; steal = CPU" \
	"time the hypervisor took for others during the storm (/proc/stat), the main source of" \
	"noise on a virtual machine; quiet ratio = median over the rounds where both runs had less" \
	"than ${QUIET_STEAL}% steal (how many in parentheses); run times" \
	"measured with kernel.bpf_stats_enabled=1 (adds two clock reads per program run)." \
	"Numbers vary with the load on the machine."
