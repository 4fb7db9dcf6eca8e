#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Loss is visible in the log itself. The log's filesystem (a 16 MiB tmpfs, room for the queue afterwards) is full while a
# connection burst overflows the agent's 4 MiB queue: the dropped lines consume their
# event.sequence, and once there is room the first line written is a log-gap line naming how many
# were dropped, which numbers and why. The numbers in the file and in the gap together are 1..N
# exactly. A restarted agent continues the file's numbers after a log-start line with a new
# agent.ephemeral_id.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"

tmpfs_new g 16m
LOG=$MNT/events.jsonl

ns_new c
host_agent_start g c || sp_finish
dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null
bg_run "$SP_TMP/burst1.out" nsx c "$SP_CONN" burst 127.0.0.1 5910 --count 1500 --deadline 60
wait_pid "$BG_PID" 60
check "lines were dropped while the disk was full" \
	wait_metric g sockpulse_log_lines_dropped_total -ge 1 10
rm -f "$MNT/filler"
bg_run "$SP_TMP/burst2.out" nsx c "$SP_CONN" burst 127.0.0.1 5911 --count 5 --deadline 60
wait_pid "$BG_PID" 60
check "writing resumes" wait_for "$LOG" '"destination":{"ip":"127.0.0.1","port":5911}' 10
host_agent_stop g TERM
DROPPED=$(metric "$SP_TMP/g.prom" sockpulse_log_lines_dropped_total)

check_eq "exactly one log-gap line" "$(count "$LOG" '.event.action == "log-gap"')" 1
GAP=$(lines "$LOG" '.event.action == "log-gap"')
check_eq "it says why" "$(jq -r '.event.reason + " / " + .error.message' <<<"$GAP")" \
	"queue-full / No space left on device"
check_eq "it counts every dropped line" "$(jq -r .sockpulse.gap.dropped <<<"$GAP")" "$DROPPED"
check_eq "its range is as long as the count" \
	"$(jq -r '.sockpulse.gap.last_sequence - .sockpulse.gap.first_sequence + 1' <<<"$GAP")" \
	"$DROPPED"
check_eq "it comes right after the gap" \
	"$(jq -r '.event.sequence - .sockpulse.gap.last_sequence' <<<"$GAP")" 1
check_eq "the numbers in the file and in the gap are 1..N, each once" \
	"$(jq -s '[.[] | .event.sequence, (select(.event.action == "log-gap") | .sockpulse.gap |
		range(.first_sequence; .last_sequence + 1))] | sort == [range(1; length + 1)]' "$LOG")" true

LAST=$(tail -n1 "$LOG" | jq .event.sequence)
ID1=$(head -n1 "$LOG" | jq -r 'select(.event.action == "log-start") | .agent.ephemeral_id')
host_agent_start g2 c --log "$LOG" || sp_finish
host_agent_stop g2 TERM
START=$(lines "$LOG" '.event.action == "log-start"' | tail -n1)
check_eq "the restart continues the numbers" "$(jq .event.sequence <<<"$START")" $((LAST + 1))
check_eq "and names the file's last number" "$(jq .sockpulse.log.previous_sequence <<<"$START")" \
	"$LAST"
check "with a new agent.ephemeral_id" test -n "$ID1" -a "$(jq -r .agent.ephemeral_id <<<"$START")" != "$ID1"
sp_finish
