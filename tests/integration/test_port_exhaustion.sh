#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Ephemeral-port exhaustion forecast. Namespace c narrows ip_local_port_range to 20 ports and
# opens connections to one server in namespace s, one every 0.4 s, keeping them all open, until
# connect() fails with EADDRNOTAVAIL. The agent must raise port-exhaustion-risk for that
# destination (with the numbers) before the first failure, and then report the failure as a
# `local` connect failure. /metrics carries the destination's usage.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"

ns_new c
ns_new s
link_pair c s 9
SRV=10.9.0.2
nsx c sysctl -qw net.ipv4.ip_local_port_range="40000 40019" 2>/dev/null
check_eq "namespace c has 20 local ports" "$(nsx c cat /proc/sys/net/ipv4/ip_local_port_range | tr -s '\t ' ' ')" "40000 40019"

host_agent_start ag - --port-risk-horizon 60s || sp_finish
LOG=$(host_agent_log ag)
bg_run "$SP_TMP/srv.out" nsx s "$SP_CONN" serve $SRV 5901 --leak --count 40 --hold 20 --deadline 45
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "server did not listen"
bg_run "$SP_TMP/fill.out" nsx c "$SP_CONN" fill $SRV 5901 --count 40 --interval 400 --hold 4 --deadline 45
wait_pid "$BG_PID" 40 || fail "the connect loop did not finish"
check_eq "the loop filled the range: 20 connections opened" "$(kv "$SP_TMP/fill.out" fill opened)" 20
check_eq "then connect() failed with EADDRNOTAVAIL" "$(kv "$SP_TMP/fill.out" fill result)" EADDRNOTAVAIL
P=$SP_TMP/ag.prom
check "port usage metric appears" wait_metric ag \
	"sockpulse_ephemeral_ports_used{source=\"10.9.0.1\",destination=\"$SRV:5901\"}" -ge 20 10
check_eq "capacity metric" \
	"$(metric "$P" "sockpulse_ephemeral_ports_capacity{source=\"10.9.0.1\",destination=\"$SRV:5901\"}")" 20
check_eq "alert gauge" \
	"$(metric "$P" "sockpulse_port_exhaustion_risk_active{source=\"10.9.0.1\",destination=\"$SRV:5901\"}")" 1
check "alerts counter" [ "$(metric "$P" sockpulse_port_exhaustion_alerts_total)" -ge 1 ]
host_agent_stop ag

CTX='.event.action == "port-exhaustion-risk" or (.event.action == "tcp-connect" and .event.outcome == "failure")'
RISK=".event.action == \"port-exhaustion-risk\" and .event.type == [\"start\"] and .event.kind == \"alert\"
	and .source.ip == \"10.9.0.1\" and $(conn_to $SRV 5901) and .network.direction == \"egress\""
expect "port-exhaustion-risk for 10.9.0.1 -> $SRV:5901, with the numbers" "$LOG" "$RISK
	and .sockpulse.ports.capacity == 20 and .sockpulse.ports.range_start == 40000
	and .sockpulse.ports.range_end == 40019 and .sockpulse.ports.used < 20
	and .sockpulse.ports.growth_rate > 0 and .sockpulse.ports.connect_rate > 0
	and .sockpulse.ports.exhaustion_ms <= 60000 and (.sockpulse.netns | type) == \"number\""
expect_count "one alert for the destination" "$LOG" "$RISK" 1
FAIL=".event.action == \"tcp-connect\" and .event.outcome == \"failure\"
	and .sockpulse.failure == \"local\" and .error.code == \"EADDRNOTAVAIL\" and $(conn_to $SRV 5901)"
expect "the failed connect: a local failure, EADDRNOTAVAIL" "$LOG" \
	"$FAIL and .process.pid == $(kv "$SP_TMP/fill.out" connect pid)"
RSEQ=$(jq -s "[.[] | select($RISK)][0].event.sequence" "$LOG")
FSEQ=$(jq -s "[.[] | select($FAIL)][0].event.sequence" "$LOG")
check "the forecast came before the failure (sequence $RSEQ < $FSEQ)" [ "$RSEQ" -lt "$FSEQ" ]
unset CTX
sp_finish
