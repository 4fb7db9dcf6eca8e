#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Lease metrics follow the engine's lines. One connection: the server sends 4 chunks of 100 bytes
# 400 ms apart, then both sides fall silent for longer than --lease-ttl 2s. While it is silent, sockpulse_leases shows
# both transport leases expired and the client's payload lease (armed by the data) expired, the
# server's payload lease never armed; once it closes, every gauge is back to 0 and
# sockpulse_lease_expirations_total equals the lease-expired lines in the log, per kind.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"

ns_new c
host_agent_start l c --lease-ttl 2s --log-actions all || sp_finish
bg_run "$SP_TMP/srv.out" nsx c "$SP_CONN" serve 127.0.0.1 6301 --count 1 --chunks 4,100,400 --hold 9 \
	--deadline 30
SRV=$BG_PID
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "server did not listen"
bg_run "$SP_TMP/cli.out" nsx c "$SP_CONN" connect 127.0.0.1 6301 --hold 9 --deadline 30
CLI=$BG_PID
check "both transport leases expire while silent" \
	wait_metric l 'sockpulse_leases{kind="transport",state="expired"}' -eq 2 8
P=$SP_TMP/l.prom
check_eq "the client's payload lease expired too" "$(metric "$P" 'sockpulse_leases{kind="payload",state="expired"}')" 1
check_eq "no lease alive" "$(metric "$P" 'sockpulse_leases{kind="transport",state="alive"}'),$(metric "$P" 'sockpulse_leases{kind="payload",state="alive"}')" "0,0"
wait_pid "$CLI" 20
wait_pid "$SRV" 20
check "every lease gauge back to 0 after the close" \
	wait_metric l 'sockpulse_leases{kind="transport",state="expired"}' -eq 0 5
P=$SP_TMP/l.prom
host_agent_stop l TERM
LOG=$(host_agent_log l)
for k in transport payload; do
	for s in alive suspect expired; do
		check_eq "leases{$k,$s} = 0 at the end" "$(metric "$P" "sockpulse_leases{kind=\"$k\",state=\"$s\"}")" 0
	done
	check_eq "lease_expirations_total{$k} = lease-expired lines" \
		"$(metric "$P" "sockpulse_lease_expirations_total{kind=\"$k\"}")" \
		"$(count "$LOG" ".event.action == \"lease-expired\" and .sockpulse.lease.kind == \"$k\"")"
done
check_eq "events_total{lease} = lease lines in the log" "$(metric "$P" 'sockpulse_events_total{kind="lease"}')" \
	"$(count "$LOG" '.event.action | startswith("lease-")')"
sp_finish
