#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# A full filesystem under the log: a 512 KiB tmpfs, filled by another file while the agent logs
# connection churn. The agent stays alive and keeps counting events, the write errors show in
# sockpulse_log_write_errors_total, stderr reports them (not once per failed write), the file
# holds only whole JSON lines, and once there is room again writing resumes with the lines that
# waited in the queue: nothing is lost across a short outage.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"

tmpfs_new w 512k

ns_new c
host_agent_start w c || sp_finish
LOG=$MNT/events.jsonl
test -e "$LOG" || fail "the agent did not create its log on the tmpfs"

# fill the filesystem to the last byte
dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null
check "the tmpfs is full" test "$(df --output=avail -B1 "$MNT" | tail -n1 | tr -d ' ')" -lt 4096

bg_run "$SP_TMP/burst1.out" nsx c "$SP_CONN" burst 127.0.0.1 5906 --count 30 --deadline 60
wait_pid "$BG_PID" 60
check "write errors are counted" wait_metric w sockpulse_log_write_errors_total -ge 1 10
check "the agent is alive" kill -0 "${SP_AGENT_PID[w]}"
check "events are still counted while the log cannot be written" \
	wait_metric w 'sockpulse_tcp_connects_total{outcome="success"}' -ge 30 10
# the report comes from the once-a-second log check: allow it a few seconds
check "stderr says why" wait_for "$SP_TMP/w.err" "log $LOG: write failed: No space left on device" 5
check_eq "reported once, not once per failed write" "$(grep -c 'write failed' "$SP_TMP/w.err")" 1
check "the log ends with a newline (no partial line)" \
	test ! -s "$LOG" -o "$(tail -c1 "$LOG" | od -An -c | tr -d ' ')" = '\n'
check "every line of the log is JSON" json_lines "$LOG"
WRITTEN=$(metric "$SP_TMP/w.prom" sockpulse_log_lines_total)

# room again
rm -f "$MNT/filler"
bg_run "$SP_TMP/burst2.out" nsx c "$SP_CONN" burst 127.0.0.1 5907 --count 20 --deadline 60
wait_pid "$BG_PID" 60
check "writing resumes once there is room" wait_metric w sockpulse_log_lines_total -gt "$WRITTEN" 10
host_agent_stop w TERM
check "the log ends with a newline" test "$(tail -c1 "$LOG" | od -An -c | tr -d ' ')" = '\n'
check "every line of the log is JSON" json_lines "$LOG"
check "the second burst is in the log" \
	test "$(count "$LOG" '.event.action == "tcp-connect" and .destination.port == 5907')" -ge 1
check_eq "the sequence numbers are 1..lines: the queue kept what could not be written" \
	"$(jq -s '[.[].event.sequence] == [range(1; length + 1)]' "$LOG")" true
check_eq "every connect of both bursts is in the log" \
	"$(count "$LOG" '.event.action == "tcp-connect"')" 50
sp_finish
