# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# Helpers for the integration tests, sourced by every tests/integration/test_*.sh.
#
# A test file: sources this, calls sp_require_bpf, builds namespaces with ns_new/link_pair,
# starts agents with agent_start, makes traffic with $SP_CONN (tools/sp_conn.c) inside
# `ip netns exec`, stops the agents with agent_stop, asserts with expect*, and ends with
# sp_finish. Exit status: 0 pass, 1 fail, 77 skip ("SKIP: reason" on stdout).
#
# Environment: SOCKPULSE (the agent binary), TOOLS (directory with sp_conn), SP_KEEP=1 keeps the
# temporary directory (agent output, helper output) for inspection. SP_CONNECT_HOOK (fentry,
# kprobe or tracepoint) runs every watch, top and agent of the test with that --connect-hook
# (an explicit --connect-hook of the test still wins): tests/vm/matrix.sh runs the suite once per
# variant.
#
# Everything is cleaned by traps: background processes are killed by pid, namespaces deleted.
# Every wait is bounded in iterations and time.

set -u

SP_TEST=$(basename "$0" .sh)
SP_FAILS=0
SP_CHECKS=0
SP_NS_LIST=()
SP_BG_PIDS=()
SP_CGROUPS=()
SP_MOUNTS=() # tmpfs_new
declare -A SP_AGENT_PID=()
declare -A SP_AGENT_NS=()

: "${SOCKPULSE:?set SOCKPULSE to the agent binary}"
: "${TOOLS:?set TOOLS to the tools directory}"
SP_CONN=$TOOLS/sp_conn
SP_TMP=$(mktemp -d "/tmp/sp-t-$$-XXXXXX")
# Short, unique per run: namespace names are global on the host.
SP_ID="sp-t-$$"

# SP_CONNECT_HOOK: $SOCKPULSE becomes a script that execs the real binary (same pid) with
# --connect-hook right after the command, so later options, the test's own, win. It lives in a
# directory anyone may enter: test_agent_privs runs it as nobody.
SP_HOOK_DIR=""
if [ -n "${SP_CONNECT_HOOK:-}" ]; then
	case $SP_CONNECT_HOOK in
	fentry | kprobe | tracepoint) ;;
	*)
		echo "FAIL: SP_CONNECT_HOOK=$SP_CONNECT_HOOK: fentry, kprobe or tracepoint"
		exit 1
		;;
	esac
	if [ -x "$SOCKPULSE" ]; then
		SP_HOOK_DIR=$(mktemp -d "/tmp/sp-hook-$$-XXXXXX")
		chmod 0755 "$SP_HOOK_DIR"
		cat >"$SP_HOOK_DIR/sockpulse" <<-EOF
			#!/bin/bash
			h=$SP_CONNECT_HOOK
			case \${1:-} in
			watch | top | agent)
				c=\$1
				shift
				exec "$SOCKPULSE" "\$c" --connect-hook \$h "\$@"
				;;
			-*) exec "$SOCKPULSE" --connect-hook \$h "\$@" ;;
			*) exec "$SOCKPULSE" "\$@" ;;
			esac
		EOF
		chmod 0755 "$SP_HOOK_DIR/sockpulse"
		SOCKPULSE=$SP_HOOK_DIR/sockpulse
	fi
fi

log() { echo "# $*"; }

fail() {
	SP_FAILS=$((SP_FAILS + 1))
	echo "FAIL: $*"
}

pass_check() {
	echo "ok: $*"
}

skip() {
	echo "SKIP: $*"
	exit 77
}

sp_cleanup() {
	local pid name i
	for pid in "${SP_AGENT_PID[@]}" "${SP_BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${SP_AGENT_PID[@]}" "${SP_BG_PIDS[@]}"; do
		for ((i = 0; i < 30; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	for name in "${SP_NS_LIST[@]}"; do
		ip netns del "$name" 2>/dev/null || true
	done
	# last made first: a cgroup made inside another goes before it
	for ((i = ${#SP_CGROUPS[@]} - 1; i >= 0; i--)); do
		rmdir "${SP_CGROUPS[i]}" 2>/dev/null || true
	done
	[ -z "$SP_HOOK_DIR" ] || rm -rf "$SP_HOOK_DIR"
	# lazily: an agent being killed may still hold a file there
	for name in "${SP_MOUNTS[@]}"; do
		umount -l "$name" 2>/dev/null || true
	done
	if [ "${SP_KEEP:-0}" = 1 ]; then
		echo "# kept $SP_TMP"
	else
		rm -rf "$SP_TMP"
	fi
}
trap sp_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ends the test: non-zero if any assertion failed.
sp_finish() {
	if [ "$SP_FAILS" -gt 0 ]; then
		echo "$SP_TEST: $SP_FAILS of $SP_CHECKS checks failed"
		exit 1
	fi
	if [ "$SP_CHECKS" -eq 0 ]; then
		echo "FAIL: $SP_TEST made no checks"
		exit 1
	fi
	echo "$SP_TEST: all $SP_CHECKS checks passed"
	exit 0
}

# Skips (loudly) only where BPF or namespaces cannot work at all; a missing agent binary is a
# failure, not a skip.
sp_require_bpf() {
	if [ "$(id -u)" -ne 0 ]; then
		skip "not root: loading BPF programs and creating network namespaces need root (or CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN)"
	fi
	[ -r /sys/kernel/btf/vmlinux ] || skip "kernel has no BTF (/sys/kernel/btf/vmlinux missing): sockpulse cannot load"
	command -v ip >/dev/null || skip "iproute2 'ip' not installed"
	command -v jq >/dev/null || skip "jq not installed"
	if [ ! -x "$SOCKPULSE" ]; then
		echo "FAIL: agent binary $SOCKPULSE not built"
		exit 1
	fi
	if [ ! -x "$SP_CONN" ]; then
		echo "FAIL: helper $SP_CONN not built"
		exit 1
	fi
	if ! ip netns add "$SP_ID-probe" 2>"$SP_TMP/netns.err"; then
		skip "cannot create network namespaces: $(head -n1 "$SP_TMP/netns.err")"
	fi
	ip netns del "$SP_ID-probe"
}

# ---------------------------------------------------------------------------------------------
# Namespaces and links

# ns_new SHORT: creates namespace $SP_ID-SHORT with lo up, no IPv6 DAD; prints nothing.
ns_new() {
	local name="$SP_ID-$1"
	ip netns add "$name" || { fail "ip netns add $name"; return 1; }
	SP_NS_LIST+=("$name")
	ip -n "$name" link set lo up
	ip netns exec "$name" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

ns_name() { echo "$SP_ID-$1"; }
ns_path() { echo "/run/netns/$SP_ID-$1"; }
ns_inode() { stat -L -c %i "/run/netns/$SP_ID-$1"; }
# nsx SHORT CMD...: runs CMD inside the namespace (ip netns exec execs, so $! is CMD's pid).
nsx() {
	local ns="$SP_ID-$1"
	shift
	ip netns exec "$ns" "$@"
}

# link_pair A B N: veth "v$N" in A and B, A gets 10.N.0.1/24 fd00:N::1/64, B .2 and ::2.
# Neighbour entries are permanent on both sides, so no ARP/ND is ever needed: taking one end down
# later only silences the path, it never turns into "host unreachable" from a failed resolution.
link_pair() {
	local a="$SP_ID-$1" b="$SP_ID-$2" n=$3 mac_a mac_b
	ip link add "v$n" netns "$a" type veth peer name "v$n" netns "$b" || {
		fail "ip link add veth $a <-> $b"
		return 1
	}
	ip -n "$a" addr add "10.$n.0.1/24" dev "v$n"
	ip -n "$b" addr add "10.$n.0.2/24" dev "v$n"
	ip -n "$a" addr add "fd00:$n::1/64" dev "v$n" nodad
	ip -n "$b" addr add "fd00:$n::2/64" dev "v$n" nodad
	ip -n "$a" link set "v$n" up
	ip -n "$b" link set "v$n" up
	mac_a=$(ip -n "$a" -j link show dev "v$n" | jq -r '.[0].address')
	mac_b=$(ip -n "$b" -j link show dev "v$n" | jq -r '.[0].address')
	ip -n "$a" neigh replace "10.$n.0.2" lladdr "$mac_b" dev "v$n" nud permanent
	ip -n "$a" neigh replace "fd00:$n::2" lladdr "$mac_b" dev "v$n" nud permanent
	ip -n "$b" neigh replace "10.$n.0.1" lladdr "$mac_a" dev "v$n" nud permanent
	ip -n "$b" neigh replace "fd00:$n::1" lladdr "$mac_a" dev "v$n" nud permanent
}

# tmpfs_new NAME SIZE: mounts a tmpfs of SIZE (mount's size=, e.g. 512k) at $SP_TMP/NAME and
# sets MNT to it; skips the test when it cannot. Unmounted at exit.
tmpfs_new() {
	MNT=$SP_TMP/$1
	mkdir -p "$MNT"
	mount -t tmpfs -o "size=$2,mode=0755" "sp-test-$1" "$MNT" || skip "cannot mount a tmpfs"
	SP_MOUNTS+=("$MNT")
}

# cg_new SHORT: creates cgroup v2 directory $SP_ID-SHORT under the cgroup2 mount and sets CG to
# its path; false if there is no cgroup2 mount. Removed at exit (its processes are ours, killed).
cg_new() {
	local root
	root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[ -n "$root" ] || return 1
	CG=$root/$SP_ID-$1
	mkdir "$CG" || return 1
	SP_CGROUPS+=("$CG")
}

# cg_sub REL: makes the directories of REL (a/b/c) under $CG, each removed at exit; sets SUB to
# the last one.
cg_sub() {
	local part dir=$CG
	local -a parts
	IFS=/ read -ra parts <<<"$1"
	for part in "${parts[@]}"; do
		dir=$dir/$part
		[ -d "$dir" ] && continue
		mkdir "$dir" || return 1
		SP_CGROUPS+=("$dir")
	done
	SUB=$dir
}

# cg_run DIR CMD...: runs CMD with its process moved into cgroup DIR first.
cg_run() {
	# shellcheck disable=SC2016 # $$ is the inner shell's pid, which then execs CMD
	bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$@"
}

# ---------------------------------------------------------------------------------------------
# Bounded waiting

# wait_for FILE REGEX SECONDS: true once a line of FILE matches (grep -E).
wait_for() {
	local file=$1 re=$2 secs=$3 i
	for ((i = 0; i < secs * 20; i++)); do
		grep -Eq -- "$re" "$file" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# wait_pid PID SECONDS: waits for a child to exit; sets WAIT_RC (124 if it did not exit in time,
# then it is killed).
wait_pid() {
	local pid=$1 secs=$2 i
	for ((i = 0; i < secs * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		WAIT_RC=124
		return 1
	fi
	wait "$pid"
	WAIT_RC=$?
	return 0
}

# bg_run OUTFILE CMD...: starts CMD in the background with stdout+stderr to OUTFILE; sets BG_PID.
# CMD "nsx SHORT ..." is run as `ip netns exec` itself: a shell function in the background runs
# in a subshell whose pid is not the command's, and a signal to it would miss the command.
bg_run() {
	local out=$1
	shift
	[ "$1" != nsx ] || set -- ip netns exec "$SP_ID-$2" "${@:3}"
	"$@" >"$out" 2>&1 &
	BG_PID=$!
	SP_BG_PIDS+=("$BG_PID")
}

# kv FILE STEP KEY: value of KEY= on the first line of FILE starting with STEP (sp_conn output).
kv() {
	local file=$1 step=$2 key=$3
	awk -v s="$step" -v k="$key" '$1 == s { for (i = 2; i <= NF; i++) { n = index($i, "=");
		if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' "$file"
}

# kv_nth FILE STEP N KEY: value of KEY= on the Nth line (1-based) of FILE starting with STEP.
kv_nth() {
	awk -v s="$2" -v want="$3" -v k="$4" '$1 == s && ++seen == want { for (i = 2; i <= NF; i++) {
		n = index($i, "="); if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' "$1"
}

# ---------------------------------------------------------------------------------------------
# The agent

# agent_start TAG NS [watch args...]: `sockpulse watch --json --netns <NS path> args`, stdout to
# $SP_TMP/TAG.json, stderr to $SP_TMP/TAG.err; waits up to 30 s for a stderr line with "ready".
# NS "-" passes no --netns (the caller gives its own in the args).
agent_start() {
	local tag=$1 ns=$2 nsargs=()
	shift 2
	[ "$ns" = - ] || nsargs=(--netns "$(ns_path "$ns")")
	"$SOCKPULSE" watch --json "${nsargs[@]}" "$@" \
		>"$SP_TMP/$tag.json" 2>"$SP_TMP/$tag.err" &
	SP_AGENT_PID[$tag]=$!
	SP_AGENT_NS[$tag]=$ns
	wait_ready "$tag"
}

# wait_ready TAG: up to 30 s for the agent's "sockpulse: ready:" line on $SP_TMP/TAG.err; fails
# with its stderr if the agent exits first or never says it.
wait_ready() {
	local tag=$1 pid=${SP_AGENT_PID[$1]} i rc
	for ((i = 0; i < 600; i++)); do
		grep -q "sockpulse: ready:" "$SP_TMP/$tag.err" 2>/dev/null && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			rc=$?
			unset "SP_AGENT_PID[$tag]"
			fail "agent $tag exited with status $rc before ready; stderr:"
			sed 's/^/    /' "$SP_TMP/$tag.err"
			return 1
		fi
		sleep 0.05
	done
	fail "agent $tag printed no 'ready' within 30 s; stderr:"
	sed 's/^/    /' "$SP_TMP/$tag.err"
	return 1
}

agent_json() { echo "$SP_TMP/$1.json"; }
agent_err() { echo "$SP_TMP/$1.err"; }

# agent_stop TAG: SIGINT, wait up to 20 s, assert exit status 0 and that every output line honours
# the common contract (valid JSON, @timestamp, event.*, strictly increasing sequence, schema 1).
agent_stop() {
	signal_stop "$1" INT || return 1
	check_common "$1"
}

# signal_stop TAG SIGNAL: sends SIGNAL, waits up to 20 s, asserts exit status 0.
signal_stop() {
	local tag=$1 sig=$2 pid=${SP_AGENT_PID[$1]:-}
	[ -n "$pid" ] || return 1
	kill -"$sig" "$pid" 2>/dev/null
	SP_CHECKS=$((SP_CHECKS + 1))
	if ! wait_pid "$pid" 20; then
		fail "agent $tag did not exit within 20 s of SIG$sig"
	elif [ "$WAIT_RC" -ne 0 ]; then
		fail "agent $tag exited with status $WAIT_RC after SIG$sig (expected 0); stderr tail:"
		tail -n 5 "$SP_TMP/$tag.err" | sed 's/^/    /'
	else
		pass_check "agent $tag exited 0 on SIG$sig"
	fi
	unset "SP_AGENT_PID[$tag]"
}

# check_common TAG: the fields every line must have (EVENTS.md "Every line has").
check_common() {
	local tag=$1 file bad
	file=$(agent_json "$tag")
	SP_CHECKS=$((SP_CHECKS + 1))
	if ! jq -e . "$file" >/dev/null 2>"$SP_TMP/jq.err"; then
		fail "agent $tag: output is not JSON lines: $(head -n1 "$SP_TMP/jq.err")"
		return
	fi
	bad=$(jq -c 'select(
		((.["@timestamp"] // "") | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z$") | not)
		or ((.event.kind // "") | IN("event", "alert") | not)
		or ((.event.action // "") | type != "string" or length == 0)
		or ((.event.sequence // null) | type != "number")
		or (.sockpulse.schema != 1)
		or ((.event.action | startswith("tcp-")) and ((.sockpulse.netns | type) != "number"
			or .network.transport != "tcp"))
		or ((.event.action | startswith("tcp-")) and .event.action != "tcp-reset"
			and .sockpulse.failure != "local" and (.sockpulse.sock | type) != "number")
		)' "$file" | head -n 3)
	if [ -n "$bad" ]; then
		fail "agent $tag: lines missing common fields (@timestamp ns RFC 3339, event.kind/action/sequence, sockpulse.schema 1, netns/transport on tcp-*, sock on tcp-* but resets sent without a socket and connect() failures before any SYN):"
		echo "$bad" | sed 's/^/    /'
		return
	fi
	bad=$(jq -s '[.[].event.sequence] as $s | [range(1; $s | length) | select($s[.] <= $s[. - 1])] | length' "$file")
	if [ "$bad" != 0 ]; then
		fail "agent $tag: event.sequence not strictly increasing ($bad violations)"
		return
	fi
	pass_check "agent $tag: $(wc -l <"$file") lines, all with the common fields, sequence increasing"
}

# ---------------------------------------------------------------------------------------------
# Assertions on JSON lines. FILTER is a jq boolean expression evaluated per line.

# lines FILE FILTER: the matching lines, compact.
lines() { jq -c "select($2)" "$1" 2>/dev/null; }
count() { jq -c "select($2)" "$1" 2>/dev/null | wc -l; }

# expect DESC FILE FILTER: at least one line matches. On failure shows CONTEXT lines (jq
# filter in $CTX, default: all lines of the same action) to make the report useful.
expect() {
	local desc=$1 file=$2 filter=$3 n
	SP_CHECKS=$((SP_CHECKS + 1))
	n=$(count "$file" "$filter")
	if [ "$n" -ge 1 ]; then
		pass_check "$desc"
		return 0
	fi
	fail "$desc: no line matches: $filter"
	show_context "$file"
	return 1
}

# expect_count DESC FILE FILTER N
expect_count() {
	local desc=$1 file=$2 filter=$3 want=$4 n
	SP_CHECKS=$((SP_CHECKS + 1))
	n=$(count "$file" "$filter")
	if [ "$n" -eq "$want" ]; then
		pass_check "$desc ($n)"
		return 0
	fi
	fail "$desc: $n lines match, expected $want: $filter"
	show_context "$file"
	return 1
}

# expect_none DESC FILE FILTER
expect_none() {
	local desc=$1 file=$2 filter=$3 n
	SP_CHECKS=$((SP_CHECKS + 1))
	n=$(count "$file" "$filter")
	if [ "$n" -eq 0 ]; then
		pass_check "$desc"
		return 0
	fi
	fail "$desc: $n unexpected lines match: $filter"
	lines "$file" "$filter" | head -n 5 | sed 's/^/    /'
	return 1
}

# check DESC COMMAND...: a plain shell condition.
check() {
	local desc=$1
	shift
	SP_CHECKS=$((SP_CHECKS + 1))
	if "$@"; then
		pass_check "$desc"
		return 0
	fi
	fail "$desc"
	return 1
}

# check_eq DESC ACTUAL EXPECTED
check_eq() {
	SP_CHECKS=$((SP_CHECKS + 1))
	if [ "$2" = "$3" ]; then
		pass_check "$1 ($2)"
		return 0
	fi
	fail "$1: got '$2', expected '$3'"
	return 1
}

# Context for a failed expectation: lines selected by $CTX (a jq filter), at most 12.
show_context() {
	local file=$1 ctx=${CTX:-true}
	echo "    context ($ctx):"
	lines "$file" "$ctx" | head -n 12 | sed 's/^/    /'
}

# The socket of a connection in agent output, by cookie.
sock_is() { echo ".sockpulse.sock == $1"; }

# Exact port/ip matching helpers for filters.
conn_to() { echo "(.destination.ip == \"$1\" and .destination.port == $2)"; }

# ---------------------------------------------------------------------------------------------
# `sockpulse agent` (tests/integration/test_agent_*.sh)

declare -A SP_METRICS_URL=()

# host_agent_start TAG NS [agent args...]: `sockpulse agent --netns <NS path> --log
# $SP_TMP/TAG/events.jsonl --metrics 127.0.0.1:0 args` (later args win), stderr to
# $SP_TMP/TAG.err; waits up to 30 s for "ready" and sets SP_METRICS_URL[TAG] from it. NS "-":
# no --netns. Prefix the command with HOST_AGENT_WRAP (an array, e.g. setpriv ...) if set.
host_agent_start() {
	local tag=$1 ns=$2 nsargs=() wrap=()
	shift 2
	[ "$ns" = - ] || nsargs=(--netns "$(ns_path "$ns")")
	[ -z "${HOST_AGENT_WRAP+x}" ] || wrap=("${HOST_AGENT_WRAP[@]}")
	"${wrap[@]}" "$SOCKPULSE" agent "${nsargs[@]}" --log "$SP_TMP/$tag/events.jsonl" \
		--metrics 127.0.0.1:0 "$@" >"$SP_TMP/$tag.out" 2>"$SP_TMP/$tag.err" &
	SP_AGENT_PID[$tag]=$!
	SP_AGENT_NS[$tag]=$ns
	wait_ready "$tag" || return 1
	SP_METRICS_URL[$tag]=$(sed -n 's|.*ready:.* metrics \(https\?://[^ ,]*\).*|\1|p' \
		"$SP_TMP/$tag.err" | head -n1)
}

host_agent_log() { echo "$SP_TMP/$1/events.jsonl"; }

# host_agent_stop TAG [SIGNAL]: SIGTERM (default), asserts exit 0 within 20 s.
host_agent_stop() {
	signal_stop "$1" "${2:-TERM}"
}

# scrape TAG FILE: GET /metrics into FILE (bounded: 10 s); false on any failure.
scrape() {
	curl -sf --max-time 10 -o "$2" "${SP_METRICS_URL[$1]}"
}

# metric FILE SERIES: the value of the sample whose name{labels} is exactly SERIES, or "absent".
metric() {
	awk -v s="$2" '$1 == s { print $2; found = 1; exit } END { if (!found) print "absent" }' "$1"
}

# wait_metric TAG SERIES OP VALUE SECONDS: scrapes until `value OP VALUE` holds (OP: -ge, -eq...);
# leaves the last scrape in $SP_TMP/TAG.prom.
wait_metric() {
	local tag=$1 series=$2 op=$3 want=$4 secs=$5 i v
	for ((i = 0; i < secs * 5; i++)); do
		if scrape "$tag" "$SP_TMP/$tag.prom"; then
			v=$(metric "$SP_TMP/$tag.prom" "$series")
			[ "$v" != absent ] && [ "${v%.*}" "$op" "$want" ] && return 0
		fi
		sleep 0.2
	done
	return 1
}

# json_lines FILE: true if every line of FILE is a JSON object (quietly).
json_lines() {
	jq -e -s 'all(.[]; type == "object")' "$1" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
# Terminal sessions in tmux (tests/integration/test_top.sh)

SP_TMUX=() # the tmux command of this test's private server (its own socket, no config file)

# tmux_start NAME COLS ROWS: a private tmux server (socket $SP_ID) with one detached session NAME
# of that fixed size, no status line, running an interactive bash (prompt "sp-shell$ ") with
# LANG=C.UTF-8. The EXIT trap is extended to kill that server.
tmux_start() {
	local name=$1 cols=$2 rows=$3
	if ! command -v tmux >/dev/null; then
		fail "tmux not installed (make deps installs it)"
		return 1
	fi
	SP_TMUX=(tmux -L "$SP_ID" -f /dev/null)
	trap 'tmux_cleanup; sp_cleanup' EXIT
	"${SP_TMUX[@]}" new-session -d -s "$name" -x "$cols" -y "$rows" \
		env LANG=C.UTF-8 LC_ALL=C.UTF-8 PS1='sp-shell$ ' bash --norc --noprofile -i || {
		fail "tmux new-session $name"
		return 1
	}
	"${SP_TMUX[@]}" set-option -g status off >/dev/null
}

tmux_cleanup() {
	[ ${#SP_TMUX[@]} -eq 0 ] || "${SP_TMUX[@]}" kill-server 2>/dev/null || true
}

# tmux_screen NAME: the visible pane as text, one line per row.
tmux_screen() {
	"${SP_TMUX[@]}" capture-pane -p -t "$1"
}

# tmux_keys NAME KEY...: tmux send-keys (key names such as Enter, Escape, Tab, Up, F10).
tmux_keys() {
	local name=$1
	shift
	"${SP_TMUX[@]}" send-keys -t "$name" "$@"
}

# wait_screen NAME REGEX SECONDS: true once the pane matches (grep -E); the last capture stays in
# $SP_TMP/screen.txt for assertions and failure reports.
wait_screen() {
	local name=$1 re=$2 secs=$3 i
	for ((i = 0; i < secs * 10; i++)); do
		tmux_screen "$name" >"$SP_TMP/screen.txt" 2>/dev/null
		grep -Eq -- "$re" "$SP_TMP/screen.txt" && return 0
		sleep 0.1
	done
	return 1
}

# wait_screen_gone NAME REGEX SECONDS: true once the pane no longer matches.
wait_screen_gone() {
	local name=$1 re=$2 secs=$3 i
	for ((i = 0; i < secs * 10; i++)); do
		tmux_screen "$name" >"$SP_TMP/screen.txt" 2>/dev/null
		grep -Eq -- "$re" "$SP_TMP/screen.txt" || return 0
		sleep 0.1
	done
	return 1
}

# show_screen: the last capture, indented, for a failure report.
show_screen() {
	echo "    screen:"
	sed 's/^/    |/' "$SP_TMP/screen.txt"
}
