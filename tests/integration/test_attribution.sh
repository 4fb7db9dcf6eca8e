#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Who owns a connection, from the owner's cgroup v2: cgroups shaped as systemd, docker, podman and
# the kubelet (systemd and cgroupfs drivers) make them, under one cgroup of the test's own in the
# cgroup2 hierarchy (found in /proc/mounts: a pure v2 host or the unified mount of a hybrid one).
# A client in each makes a refused connect to a port of its own; the one in the systemd service
# also holds a silent connection past a 1 s lease TTL. The lines carry the unit, container, runtime,
# pod and the path; the lease lines too. The agent's /metrics counts the connects under each
# service (the unit, else the container's short id), `top` (in tmux) shows them in its SERVICE
# column and grouped by service (key b), and `--cgroup UNIT` keeps only the unit's.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

cg_new attr || skip "no cgroup2 mount in /proc/mounts: nothing to attribute from"
REL=/$(basename "$CG")
DOCKER=4f1c7e2d9a8b6c5d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d
CTR=a3b1f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1
POD=1b2c3d4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e
POD2=99999999-8888-7777-6666-555555555555
UNIT=sp-test-$$.service

declare -A SHAPE=(
	[7101]=system.slice/$UNIT
	[7102]=system.slice/docker-$DOCKER.scope
	[7103]=kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD//-/_}.slice/cri-containerd-$CTR.scope
	[7104]=kubepods/besteffort/pod$POD2/$CTR
	[7105]=machine.slice/libpod-$CTR.scope
)
declare -A DIR=()
for port in "${!SHAPE[@]}"; do
	cg_sub "${SHAPE[$port]}" || { fail "cannot make cgroup ${SHAPE[$port]}"; sp_finish; }
	DIR[$port]=$SUB
done

ns_new n
# a connection older than the agent, from the docker scope: the socket-table walk finds it. Both
# ends wait, connected, until the agent is ready (a slow machine may take longer to start it
# than any fixed hold), then send, hold and close as they would have.
GO=$SP_TMP/older-go
bg_run "$SP_TMP/osrv.out" nsx n "$SP_CONN" serve 127.0.0.1 7002 --count 1 --wait-file "$GO" \
	--hold 8 --deadline 90
OSRV=$BG_PID
wait_for "$SP_TMP/osrv.out" '^listening' 10 || fail "early server did not listen"
bg_run "$SP_TMP/ocli.out" cg_run "${DIR[7102]}" ip netns exec "$(ns_name n)" \
	"$SP_CONN" connect 127.0.0.1 7002 --wait-file "$GO" --send 10 --hold 6 --deadline 90
OCLI=$BG_PID
wait_for "$SP_TMP/ocli.out" '^connect .*result=ok' 10 || fail "early client did not connect"
agent_start w n --lease-ttl 1s || sp_finish
touch "$GO"
agent_start f n --cgroup "$UNIT" || sp_finish
host_agent_start m n --log off || sp_finish
tmux_start top 160 40 || sp_finish
tmux_keys top "clear; $SOCKPULSE top --netns $(ns_path n) --lease-ttl 30s; echo top-exited-\$?" Enter
wait_screen top '^PEER ' 30 || { fail "top did not start"; show_screen; }

bg_run "$SP_TMP/srv.out" nsx n "$SP_CONN" serve 127.0.0.1 7001 --count 1 --hold 4 --deadline 15
SRV=$BG_PID
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "server did not listen"
bg_run "$SP_TMP/hold.out" cg_run "${DIR[7101]}" ip netns exec "$(ns_name n)" \
	"$SP_CONN" connect 127.0.0.1 7001 --send 10 --hold 3 --deadline 15
HOLD=$BG_PID
for port in "${!SHAPE[@]}"; do
	cg_run "${DIR[$port]}" ip netns exec "$(ns_name n)" "$SP_CONN" connect 127.0.0.1 "$port" \
		--deadline 5 >"$SP_TMP/c$port.out" 2>&1
	grep -q 'ECONNREFUSED' "$SP_TMP/c$port.out" || fail "client in ${SHAPE[$port]} was not refused"
done
check "top: the unit in the SERVICE column" wait_screen top "127.0.0.1:7101 .* $UNIT " 10
tmux_keys top b
if wait_screen top 'a3b1f0c9d8e7 \(3 peers\)' 10; then
	pass_check "top grouped by service: the pod's, cri-o's and podman's container (3 peers)"
	cp "$SP_TMP/screen.txt" "$SP_TMP/top-by-service.txt"
else
	fail "top grouped by service: no row for a3b1f0c9d8e7 with 3 peers"
	show_screen
fi
check "top grouped by service: the unit's row" grep -Eq "^$UNIT \([0-9]+ peers?\)" "$SP_TMP/screen.txt"
check "top grouped by service: the docker container's row" \
	grep -Eq "^${DOCKER:0:12} \(1 peer\)" "$SP_TMP/screen.txt"
tmux_keys top q
wait_screen top 'top-exited-0' 10 || { fail "top did not exit 0 on q"; show_screen; }
wait_pid "$HOLD" 15 || fail "holding client did not finish"
wait_pid "$OCLI" 20 || fail "early client did not finish"
wait_pid "$OSRV" 20 || fail "early server did not finish"
wait_pid "$SRV" 15 || fail "server did not finish"
refused() { echo ".event.action == \"tcp-connect\" and .destination.port == $1"; }
J=$(agent_json w)
wait_for "$J" '"lease-(closed|expired)"' 5 || true
agent_stop w
agent_stop f

svc_metric() { echo "sockpulse_service_tcp_connects_total{service=\"$1\",outcome=\"$2\"}"; }
check "/metrics: the unit's refused connect" wait_metric m "$(svc_metric "$UNIT" failure)" -ge 1 10
check "/metrics: the unit's held connect" wait_metric m "$(svc_metric "$UNIT" success)" -ge 1 10
check "/metrics: the docker container by its short id" \
	wait_metric m "$(svc_metric "${DOCKER:0:12}" failure)" -eq 1 10
check "/metrics: the kubelet's, cri-o's and podman's containers (one id) by its short id" \
	wait_metric m "$(svc_metric "${CTR:0:12}" failure)" -eq 3 10
check "/metrics: the unit's lease under its service" \
	wait_metric m "sockpulse_service_leases{service=\"$UNIT\",kind=\"transport\",state=\"alive\"}" -eq 0 10
host_agent_stop m

F=$(agent_json f)
expect "--cgroup $UNIT: the unit's state changes" "$F" \
	".event.action == \"tcp-state-change\" and .destination.port == 7101 and .systemd.unit == \"$UNIT\""
expect_none "--cgroup $UNIT: no other cgroup's state changes" "$F" \
	".event.action == \"tcp-state-change\" and .destination.port != 7101 and .destination.port != 7001"

path() { echo "\"$REL/${SHAPE[$1]}\""; }

expect "systemd service: unit and path" "$J" \
	"$(refused 7101) and .systemd.unit == \"$UNIT\" and .sockpulse.cgroup == $(path 7101) and (.container | not) and (.orchestrator | not)"
expect "docker scope: container id and runtime, no unit" "$J" \
	"$(refused 7102) and .container.id == \"$DOCKER\" and .container.runtime == \"docker\" and (.systemd | not) and .sockpulse.cgroup == $(path 7102) and (.kubernetes | not)"
expect "kubelet systemd driver: pod uid with dashes, containerd" "$J" \
	"$(refused 7103) and .container.id == \"$CTR\" and .container.runtime == \"containerd\" and .orchestrator.type == \"kubernetes\" and .kubernetes.pod.uid == \"$POD\" and .sockpulse.cgroup == $(path 7103)"
expect "kubelet cgroupfs driver: pod uid and container id, no runtime" "$J" \
	"$(refused 7104) and .container.id == \"$CTR\" and (.container.runtime | not) and .orchestrator.type == \"kubernetes\" and .kubernetes.pod.uid == \"$POD2\""
expect "podman scope" "$J" \
	"$(refused 7105) and .container.id == \"$CTR\" and .container.runtime == \"podman\" and (.systemd | not)"
# every line of the held connection names the service, the kernel's and the engine's alike
HOLD_SOCK=$(jq -r 'select(.event.action == "tcp-connect" and .destination.port == 7001) | .sockpulse.sock' "$J" | head -n1)
if [ -n "$HOLD_SOCK" ]; then
	expect "the held connection's state changes name the unit" "$J" \
		".event.action == \"tcp-state-change\" and .sockpulse.sock == $HOLD_SOCK and .sockpulse.new_state == \"established\" and .systemd.unit == \"$UNIT\""
	expect "its lease lines name the unit" "$J" \
		"(.event.action | startswith(\"lease-\")) and .sockpulse.sock == $HOLD_SOCK and .systemd.unit == \"$UNIT\" and .sockpulse.cgroup == $(path 7101)"
	expect_none "no line of it names another owner" "$J" \
		".sockpulse.sock == $HOLD_SOCK and .process.name == \"sp_conn\" and .sockpulse.cgroup != $(path 7101)"
else
	fail "no tcp-connect line for the held connection"
fi

# the connection older than the agent: its lease lines (the walk found its socket and owner)
expect "a connection older than the agent: lease lines name its container" "$J" \
	"(.event.action | startswith(\"lease-\")) and .destination.port == 7002 and .network.direction == \"egress\" and .container.id == \"$DOCKER\" and .container.runtime == \"docker\""

# replay keeps the attribution on the lease lines it makes
"$SOCKPULSE" replay --json --lease-ttl 1s "$J" >"$SP_TMP/replay.json" 2>"$SP_TMP/replay.err" ||
	fail "replay failed: $(head -n3 "$SP_TMP/replay.err")"
expect "replayed lease lines name the unit and the path" "$SP_TMP/replay.json" \
	"(.event.action | startswith(\"lease-\")) and .systemd.unit == \"$UNIT\" and .sockpulse.cgroup == $(path 7101)"

sp_finish
