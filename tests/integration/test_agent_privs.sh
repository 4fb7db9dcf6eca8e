#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Privileges. As an unprivileged user (nobody) with exactly CAP_BPF, CAP_PERFMON and
# CAP_NET_ADMIN as ambient capabilities (what tools/sockpulse.service grants), the agent loads,
# attaches, logs a connection and serves /metrics. Without them it exits with status 3 and one
# line naming what is missing.
#
# Known limitation, printed as a note: where the syscall tracepoints are the connect hook,
# libbpf reads their ids from tracefs, mode 0700 root by default. If the capabilities alone are
# refused for that reason, the test grants tracefs to the group for the run (remount gid,mode),
# restores it at exit, and checks the agent then works.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v setpriv >/dev/null || skip "setpriv (util-linux) not installed"

NOBODY=65534
PDIR=$(mktemp -d /tmp/sp-priv-XXXXXX)
chmod 0755 "$PDIR"
chown "$NOBODY:$NOBODY" "$PDIR"
TRACEFS=/sys/kernel/tracing
TRACEFS_RESTORE=
PARANOID=/proc/sys/kernel/perf_event_paranoid
PARANOID_RESTORE=
restore() {
	[ -z "$TRACEFS_RESTORE" ] || mount -o "remount,$TRACEFS_RESTORE" "$TRACEFS"
	[ -z "$PARANOID_RESTORE" ] || echo "$PARANOID_RESTORE" >"$PARANOID"
	rm -rf "$PDIR"
	sp_cleanup
}
trap restore EXIT

ns_new c
CAPS=+bpf,+perfmon,+net_admin

# 1. no capabilities at all
setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups --inh-caps=-all --ambient-caps=-all \
	"$SOCKPULSE" agent --netns "$(ns_path c)" --log "$PDIR/none.jsonl" --metrics off \
	--duration 5 >"$SP_TMP/none.out" 2>"$SP_TMP/none.err"
check_eq "without capabilities: exit status 3" "$?" 3
check "one line names what is missing" \
	grep -q "missing capability CAP_BPF and CAP_PERFMON: run as root, or grant CAP_BPF and CAP_PERFMON" "$SP_TMP/none.err"
check_eq "and only one line" "$(wc -l <"$SP_TMP/none.err")" 1

# 2. exactly the three capabilities
HOST_AGENT_WRAP=(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups --inh-caps=$CAPS
	--ambient-caps=$CAPS)
# a quiet probe first: the known tracefs limitation is a note, anything else a failure
"${HOST_AGENT_WRAP[@]}" "$SOCKPULSE" agent --netns "$(ns_path c)" --log off --metrics off \
	--sockdiag-interval off --duration 1 >/dev/null 2>"$SP_TMP/probe.err"
if [ $? -ne 0 ] && grep -q "attach sp_sys_enter_connect failed: Permission denied" "$SP_TMP/probe.err" &&
	[ "$(stat -c %a "$TRACEFS")" = 700 ]; then
	echo "# NOTE: with only the three capabilities, attaching the syscall tracepoints fails:"
	echo "#       libbpf cannot read their ids in tracefs ($TRACEFS is mode 0700 root)."
	echo "#       Granting tracefs to the agent's group for this run."
	sed 's/^/#       /' "$SP_TMP/probe.err"
	opts=$(awk -v m="$TRACEFS" '$2 == m && $3 == "tracefs" { print $4 }' /proc/mounts)
	gid=$(echo "$opts" | tr ',' '\n' | sed -n 's/^gid=//p')
	mode=$(echo "$opts" | tr ',' '\n' | sed -n 's/^mode=//p')
	TRACEFS_RESTORE="gid=${gid:-0},mode=${mode:-0700}"
	mount -o remount,gid=$NOBODY,mode=0750 "$TRACEFS" || fail "cannot remount tracefs"
fi
# Debian's kernels default to perf_event_paranoid=3 (perf events for CAP_SYS_ADMIN only): the
# kprobe and tracepoint variants attach through perf events, fentry does not. The agent's line
# must say so; then the test lowers it to 2 for the run.
if [ "$(cat "$PARANOID")" -ge 3 ] &&
	grep -q "attach sp_.*failed: Permission denied" "$SP_TMP/probe.err"; then
	check "the refusal names kernel.perf_event_paranoid=3" \
		grep -q "kernel.perf_event_paranoid=3 allows perf events to CAP_SYS_ADMIN only" \
		"$SP_TMP/probe.err"
	echo "# NOTE: perf_event_paranoid=3: lowered to 2 for this run"
	PARANOID_RESTORE=$(cat "$PARANOID")
	echo 2 >"$PARANOID"
fi
host_agent_start u c --log "$PDIR/events.jsonl" || sp_finish
PID=${SP_AGENT_PID[u]}
check_eq "runs as nobody" "$(awk '/^Uid:/ { print $3 }' /proc/"$PID"/status)" $NOBODY
check_eq "effective capabilities are exactly BPF, PERFMON, NET_ADMIN" \
	"$(awk '/^CapEff:/ { print $2 }' /proc/"$PID"/status)" 000000c000001000
check "sock_diag says why it cannot enter the namespace (setns needs CAP_SYS_ADMIN)" \
	grep -q "setns needs CAP_SYS_ADMIN" "$SP_TMP/u.err"
# Under kprobe, kprobe_events is not writable by nobody: the return probe falls back to the
# kernel's default number of calls, and start-up says what that costs.
if grep -q "connect hook: kprobe" "$SP_TMP/u.err"; then
	check "kprobe without tracefs write access: start-up names the fallback and its cost" \
		grep -q "follows the kernel's default number of calls at once.*lost uncounted" \
		"$SP_TMP/u.err"
fi
bg_run "$SP_TMP/srv.out" nsx c "$SP_CONN" serve 127.0.0.1 6101 --count 1 --deadline 20
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "server did not listen"
nsx c "$SP_CONN" connect 127.0.0.1 6101 --deadline 20 >"$SP_TMP/cli.out" 2>&1
check "the connect is counted" wait_metric u 'sockpulse_tcp_connects_total{outcome="success"}' -eq 1 10
host_agent_stop u TERM
check_eq "the connect is logged" "$(count "$PDIR/events.jsonl" '.event.action == "tcp-connect"')" 1
check_eq "the log belongs to nobody, mode 0640" "$(stat -c '%u %a' "$PDIR/events.jsonl")" "$NOBODY 640"
sp_finish
