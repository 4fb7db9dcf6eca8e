#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# No verdicts on what the agent could not see. The agent walks only its own namespace. In
# another one, 40 idle connections are opened (the agent sees them established), then a storm
# of short connections overflows a tiny ring (--ring-size 4096) and those 40 are closed in the
# middle of it, so their ends are lost. Their leases are held, then ended as `unobserved` (lease-lost, event.kind
# event): no lease-expired and no tcp-stuck alert about that namespace follows, though their TTL
# (5 s) and the stuck threshold (3 s) pass long before the agent stops.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
host_agent_start r - --ring-size 4096 --lease-ttl 5s --stuck-after 3s || sp_finish
L=$(host_agent_log r)
NS=$(ns_inode c)
bg_run "$SP_TMP/srv.out" nsx c "$SP_CONN" serve 127.0.0.1 5822 --no-accept --backlog 128 --hold 20 \
	--deadline 25
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "server did not listen"
bg_run "$SP_TMP/fill.out" nsx c "$SP_CONN" fill 127.0.0.1 5822 --count 40 --hold 30 --deadline 40
FILL=$BG_PID
wait_for "$SP_TMP/fill.out" '^fill opened=40' 10 || fail "the 40 connections did not open"
sleep 0.5
bg_run "$SP_TMP/burst.out" nsx c bash -c "for i in 1 2 3 4; do '$SP_CONN' burst 127.0.0.1 5821 \
	--count 2000 --deadline 30; done"
STORM=$BG_PID
# the storm is under way (the agent sees it): the 40 close now, while the ring overflows
wait_for "$L" '"port":5821' 10 || fail "the storm did not start"
sleep 0.2
kill -KILL "$FILL"
wait_pid "$FILL" 10
wait_pid "$STORM" 60
check "the ring overflowed" wait_for "$L" '"action":"events-lost"' 5
# hold (5 s) + TTL (5 s) and the stuck threshold (3 s) pass after the loss
sleep 9
host_agent_stop r TERM
UNOBS=$(count "$L" ".event.action == \"lease-lost\" and .event.reason == \"unobserved\" and .sockpulse.netns == $NS")
log "leases of the unwalked namespace ended unobserved: $UNOBS"
check "leases whose end was lost ended as unobserved ($UNOBS)" test "$UNOBS" -ge 1
# (other namespaces of this host have traffic of their own: only the storm's namespace counts)
expect_none "no lease-expired alert" "$L" ".event.action == \"lease-expired\" and .sockpulse.netns == $NS"
expect_none "no tcp-stuck alert" "$L" ".event.action == \"tcp-stuck\" and .sockpulse.netns == $NS"
sp_finish
