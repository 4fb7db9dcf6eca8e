#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The benchmark's floor (tools/floor) and its ways of keeping socket state (--keep), which
# `make bench` measures against each other:
#   - every way loads, attaches, and drains one record per state change of real loopback
#     connections, with none lost;
#   - the ways that key a map by socket cookie leave no entry of the test's sockets behind once
#     they closed (entries of the host's other sockets are not the test's to count)
#     (an entry left would be a leak the benchmark hides as a cheaper way);
#   - with --probe, inbound segments of a connection that lives 2.4 s bring activity records (one
#     per socket per second at most), and without it none;
#   - with --hook, the do-nothing connect/accept hooks are attached while it runs (the three
#     syscall tracepoints, or cgroup connect4/connect6 on the root cgroup v2) and gone after;
#   - a bad way, a missing way or a stray argument exits 2 with a one-line reason.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
FLOOR=$TOOLS/floor
[ -x "$FLOOR" ] || { echo "FAIL: $FLOOR not built"; exit 1; }
command -v bpftool >/dev/null || skip "bpftool not installed"

"$FLOOR" --keep bogus >/dev/null 2>"$SP_TMP/usage.err"
check_eq "an unknown way exits 2" "$?" 2
check "and says which way it did not know, on one line" \
	test "$(grep -c "unknown way 'bogus'" "$SP_TMP/usage.err")" = 1
"$FLOOR" stray >/dev/null 2>&1
check_eq "a stray argument exits 2" "$?" 2
"$FLOOR" --probe >/dev/null 2>"$SP_TMP/usage2.err"
check_eq "an option without its way exits 2" "$?" 2
check "and says so on one line" test "$(grep -c -- '--probe needs a way' "$SP_TMP/usage2.err")" = 1

# floor_start NAME LABEL ARGS...: the floor with ARGS in the background, output in
# $SP_TMP/NAME.out and .err; sets out, err and pid. False (the check failed) if it never says
# ready.
floor_start() {
	local name=$1 label=$2
	shift 2
	out=$SP_TMP/$name.out err=$SP_TMP/$name.err
	env --default-signal=INT "$FLOOR" "$@" >"$out" 2>"$err" &
	pid=$!
	SP_BG_PIDS+=("$pid")
	wait_for "$err" 'floor: ready' 30 && return 0
	fail "floor $label did not start: $(head -n1 "$err")"
	return 1
}

# floor_stop LABEL: SIGINT to the floor of floor_start; it prints its counts and exits 0.
floor_stop() {
	kill -INT "$pid"
	wait_pid "$pid" 10
	check_eq "$1: the floor exits 0 on SIGINT" "$WAIT_RC" 0
}

CONNS=20
ns_new f
port=5801
for way in none storage lru lru-percpu hash; do
	floor_start "floor-$way" "--keep $way" --keep "$way" || continue
	port=$((port + 1))
	# its own listener, $CONNS connections accepted and closed, then the listener closed
	nsx f "$SP_CONN" burst 127.0.0.1 "$port" --count "$CONNS" --deadline 20 \
		>"$SP_TMP/burst-$way.out" 2>&1
	check_eq "$way: the burst of $CONNS connections completed" "$?" 0
	check "$way: none of them failed" grep -q "^burst count=$CONNS failed=0 " "$SP_TMP/burst-$way.out"
	sleep 0.3 # the last closes, then a drain of the ring (every 100 ms)
	case $way in
	lru | lru-percpu | hash)
		map=kept_${way//-/_}
		id=$(bpftool map show -j | jq -r --arg m "$map" --argjson p "$pid" \
			'.[] | select(.name == $m and ((.pids // []) | map(.pid) | index($p))) | .id' | head -n1)
		if [ -z "$id" ]; then # bpftool without pid references: the newest map of the name
			id=$(bpftool map show -j | jq -r --arg m "$map" '[.[] | select(.name == $m)] | last | .id')
		fi
		# the floor sees every socket of the host: count the test namespace's only
		left=$(bpftool map dump id "$id" -j 2>/dev/null |
			jq --argjson ns "$(ns_inode f)" '[.[] | select(.formatted.value.netns == $ns)] | length')
		check_eq "$way: no entry of the test's sockets is left in $map once they closed" \
			"${left:-unreadable}" 0
		;;
	esac
	floor_stop "$way"
	records=$(jq -r .records "$out" 2>/dev/null)
	lost=$(jq -r .lost "$out" 2>/dev/null)
	log "$way: $(cat "$out")"
	# per connection: 5 changes on each side; the listener: 2
	check "$way: at least $((CONNS * 10 + 2)) records drained (got ${records:-none})" \
		test "${records:-0}" -ge $((CONNS * 10 + 2))
	check_eq "$way: none lost" "${lost:-none}" 0
	check_eq "$way: no activity records without --probe" "$(jq -r .activity "$out" 2>/dev/null)" 0
done

# The server sends 12 chunks of 100 bytes, 200 ms apart, then closes: both ends see segments for
# about 2.7 s, so each sends at most two activity records (the first interval starts at its first
# segment), and at least one does; without coalescing there would be one per segment (30 or so).
# The bound allows a slow machine one more each.
for way in storage slots; do
	floor_start "probe-$way" "--probe $way" --probe "$way" || continue
	port=$((port + 1))
	bg_run "$SP_TMP/pserve-$way.out" nsx f "$SP_CONN" serve 127.0.0.1 "$port" --count 1 \
		--chunks 12,100,200 --hold 0.3 --deadline 20
	serve=$BG_PID
	wait_for "$SP_TMP/pserve-$way.out" '^listening' 10 || true
	nsx f "$SP_CONN" connect 127.0.0.1 "$port" --hold 3 --deadline 20 \
		>"$SP_TMP/pconn-$way.out" 2>&1
	check_eq "probe $way: the paced connection completed" "$?" 0
	wait_pid "$serve" 20
	sleep 0.3
	floor_stop "probe $way"
	log "probe $way: $(cat "$out")"
	activity=$(jq -r .activity "$out" 2>/dev/null)
	check "probe $way: 1 to 6 activity records for 2 sockets over 2.7 s (got ${activity:-none})" \
		test "${activity:-0}" -ge 1 -a "${activity:-0}" -le 6
	check_eq "probe $way: none lost" "$(jq -r .lost "$out" 2>/dev/null)" 0
done

for way in syscalls cgroup; do
	floor_start "hook-$way" "--hook $way" --hook "$way" || continue
	case $way in
	syscalls)
		n=$(bpftool perf show -j | jq --argjson p "$pid" '[.[] | select(.pid == $p and
			(.tracepoint == "sys_enter_connect" or .tracepoint == "sys_exit_connect" or
			 .tracepoint == "sys_exit_accept4"))] | length')
		check_eq "hook syscalls: the connect and accept syscall tracepoints are attached" "$n" 3
		;;
	cgroup)
		bpftool cgroup tree >"$SP_TMP/cgtree.out" 2>&1
		check_eq "hook cgroup: connect4 and connect6 programs are attached to a cgroup" \
			"$(grep -Ec 'floor_connect(4|6)' "$SP_TMP/cgtree.out")" 2
		;;
	esac
	port=$((port + 1))
	nsx f "$SP_CONN" burst 127.0.0.1 "$port" --count "$CONNS" --deadline 20 \
		>"$SP_TMP/hburst-$way.out" 2>&1
	check_eq "hook $way: the burst completes with the hooks attached" "$?" 0
	floor_stop "hook $way"
	check "hook $way: at least $((CONNS * 10 + 2)) records drained" \
		test "$(jq -r .records "$out" 2>/dev/null)" -ge $((CONNS * 10 + 2))
done

# Where no cgroup2 is mounted, the floor mounts it for a moment: a private mount namespace with
# every cgroup2 mount taken away.
unshare -m sh -c 'for m in $(awk "\$3 == \"cgroup2\" { print \$2 }" /proc/self/mounts); do
		umount -l "$m"; done
	grep -q " cgroup2 " /proc/self/mounts && exit 3
	exec env --default-signal=INT "$0" --hook cgroup' "$FLOOR" >"$SP_TMP/hook-nomount.out" \
	2>"$SP_TMP/hook-nomount.err" &
pid=$!
SP_BG_PIDS+=("$pid")
if wait_for "$SP_TMP/hook-nomount.err" 'floor: ready' 30; then
	bpftool cgroup tree >"$SP_TMP/cgtree2.out" 2>&1
	check_eq "without a cgroup2 mount: connect4 and connect6 are attached all the same" \
		"$(grep -Ec 'floor_connect(4|6)' "$SP_TMP/cgtree2.out")" 2
	kill -INT "$pid"
	wait_pid "$pid" 10
	check_eq "without a cgroup2 mount: the floor exits 0 on SIGINT" "$WAIT_RC" 0
else
	wait_pid "$pid" 5
	fail "floor --hook cgroup without a cgroup2 mount did not start (exit $WAIT_RC):" \
		"$(head -n1 "$SP_TMP/hook-nomount.err")"
fi
check "no cgroup connect program of the floor is left attached" \
	sh -c '! bpftool cgroup tree 2>&1 | grep -q floor_connect'
check "no temporary cgroup2 mount point is left in /tmp" \
	sh -c '! ls -d /tmp/floor-cgroup2.* 2>/dev/null | grep -q .'
sp_finish
