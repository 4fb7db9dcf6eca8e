#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# No silent loss. A deliberately tiny ring (--ring-size 4096: about 30 records) under a burst of
# 2000 loopback connections (about 12 records each) must overflow. Then:
#   - loss actually happened (else this test tests nothing);
#   - the events-lost lines, summed per kind, equal the "summary: lost" counts on stderr;
#   - the lines printed per kind equal the "summary: events" counts (nothing dropped in userspace);
#   - every connect and transition of the burst is accounted for: lines + lost records = what the
#     burst made (2000 connects, 10 transitions per connection + 2 for the listener).
. "$(dirname "$0")/lib.sh"
sp_require_bpf

N=2000
ns_new c
agent_start cli c --ring-size 4096 || sp_finish
bg_run "$SP_TMP/burst.out" nsx c "$SP_CONN" burst 127.0.0.1 5801 --count $N --deadline 60
wait_pid "$BG_PID" 60
check_eq "burst of $N connections completed" "$(kv "$SP_TMP/burst.out" burst count),$(kv "$SP_TMP/burst.out" burst failed)" "$N,0"
agent_stop cli
C=$(agent_json cli)
E=$(agent_err cli)

# "sockpulse: summary: lost 12: state=10 connect=2 ..." -> value of KIND in the WHAT line
summary() { # WHAT KIND
	grep -m1 "summary: $1 " "$E" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
total_lost=$(grep -m1 'summary: lost ' "$E" | sed -n 's/.*summary: lost \([0-9]*\):.*/\1/p')
check "stderr has the exit summary of losses" test -n "$total_lost"
check "the tiny ring overflowed: lost total > 0 (got ${total_lost:-none})" test "${total_lost:-0}" -gt 0
check_eq "events-lost lines sum to the summary total" \
	"$(jq -s '[.[] | select(.event.action == "events-lost") | .sockpulse.lost.count] | add // 0' "$C")" "${total_lost:-none}"
expect_none "events-lost lines carry a positive count and a kind" "$C" \
	'.event.action == "events-lost" and ((.sockpulse.lost.count | type) != "number" or .sockpulse.lost.count < 1 or (.sockpulse.lost.kind | type) != "string")'

declare -A ACTION=([state]=tcp-state-change [connect]=tcp-connect [keepalive-timeout]=tcp-keepalive-timeout
	[retransmit-timeout]=tcp-retransmit-timeout [reset]=tcp-reset [activity]=tcp-activity)
for kind in "${!ACTION[@]}"; do
	lost=$(summary lost "$kind")
	got=$(summary events "$kind")
	check_eq "lost $kind: events-lost lines = summary" \
		"$(jq -s "[.[] | select(.event.action == \"events-lost\" and .sockpulse.lost.kind == \"$kind\") | .sockpulse.lost.count] | add // 0" "$C")" "${lost:-missing}"
	check_eq "events $kind: ${ACTION[$kind]} lines = summary" "$(count "$C" ".event.action == \"${ACTION[$kind]}\"")" "${got:-missing}"
done
check_eq "every connect accounted for: tcp-connect lines + lost connect records" \
	"$(( $(count "$C" '.event.action == "tcp-connect"') + $(summary lost connect | grep . || echo 0) ))" "$N"
# Each connection makes 5 transitions on each side (client close>syn_sent>established>fin_wait1>
# fin_wait2|closing>close, server listen>syn_recv>established>close_wait|fin_wait1>...>close), the
# listener 2 (close>listen, listen>close).
check_eq "every transition accounted for: tcp-state-change lines + lost state records" \
	"$(( $(count "$C" '.event.action == "tcp-state-change"') + $(summary lost state | grep . || echo 0) ))" "$((10 * N + 2))"
sp_finish
