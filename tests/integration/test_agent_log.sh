#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The agent's log under churn: rotation by size (--log-max-size 64K) and a logrotate-style
# rename followed by SIGHUP, in the middle of the traffic. Afterwards every file ends with a
# newline, every line is JSON, no rotated file is over the limit or still matches *.jsonl, and
# the lines of all files together carry every sequence number once: nothing lost, nothing split,
# nothing doubled. --log-actions narrows; --log-activity adds tcp-activity lines to the list.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

N=300
MAX=65536
ns_new c
host_agent_start r c --log-max-size 64K --log-keep 1000 || sp_finish
DIR=$SP_TMP/r
LOG=$DIR/events.jsonl

bg_run "$SP_TMP/burst1.out" nsx c "$SP_CONN" burst 127.0.0.1 5902 --count $N --deadline 60
wait_pid "$BG_PID" 60
# logrotate without copytruncate: rename, then tell the agent. The agent may be rotating by
# size at that instant (the live file is renamed, then made again): try again a moment later.
for _ in 1 2 3 4 5 6 7 8 9 10; do
	mv "$LOG" "$DIR/events.jsonl-renamed" 2>/dev/null && break
	sleep 0.05
done
bg_run "$SP_TMP/burst2.out" nsx c "$SP_CONN" burst 127.0.0.1 5903 --count $N --deadline 60
sleep 0.3
kill -HUP "${SP_AGENT_PID[r]}"
wait_pid "$BG_PID" 60
check "SIGHUP reopened the log" wait_for "$SP_TMP/r.err" "SIGHUP: reopened" 5
bg_run "$SP_TMP/burst3.out" nsx c "$SP_CONN" burst 127.0.0.1 5904 --count $N --deadline 60
wait_pid "$BG_PID" 60
sleep 0.5
host_agent_stop r TERM

check "agent still alive until SIGTERM (no crash on HUP)" grep -q "summary: events" "$SP_TMP/r.err"
ROTATED=$(find "$DIR" -name 'events.jsonl.[0-9]*' | wc -l)
check "rotation by size happened (got $ROTATED rotated files)" test "$ROTATED" -ge 3
check "the renamed file exists" test -s "$DIR/events.jsonl-renamed"
check_eq "only the live file matches *.jsonl" "$(find "$DIR" -name '*.jsonl' | wc -l)" 1

bad=0
for f in "$DIR"/*; do
	[ -s "$f" ] || continue
	if [ "$(tail -c1 "$f" | od -An -c | tr -d ' ')" != '\n' ]; then
		fail "$f does not end with a newline"
		bad=1
	fi
	if ! json_lines "$f"; then
		fail "$f has a line that is not JSON"
		bad=1
	fi
	case $f in
	*/events.jsonl.[0-9]*)
		size=$(stat -c %s "$f")
		[ "$size" -le $MAX ] || { fail "$f is $size bytes, over $MAX"; bad=1; }
		;;
	esac
done
SP_CHECKS=$((SP_CHECKS + 1))
[ $bad -eq 0 ] && pass_check "every file: whole JSON lines, rotated ones within the size limit"

cat "$DIR"/* >"$SP_TMP/all.jsonl"
check_eq "the sequence numbers of all files are 1..lines, each once" \
	"$(jq -s '[.[].event.sequence] | sort == [range(1; length + 1)]' "$SP_TMP/all.jsonl")" true
check_eq "every connect is in the log" "$(count "$SP_TMP/all.jsonl" '.event.action == "tcp-connect"')" $((3 * N))
check_eq "each file holds consecutive sequence numbers" \
	"$(for f in "$DIR"/*; do jq -s '[.[].event.sequence] | . == [range(.[0]; .[0] + length)]' "$f"; done | sort -u)" true

# --log-actions and --log-activity
host_agent_start a c --log-actions tcp-connect --log-activity || sp_finish
bg_run "$SP_TMP/serve.out" nsx c "$SP_CONN" serve 127.0.0.1 5905 --chunks 20,100,100 --hold 0.3 \
	--deadline 20
wait_for "$SP_TMP/serve.out" '^listening' 10 || fail "server did not listen"
nsx c "$SP_CONN" connect 127.0.0.1 5905 --hold 5 --deadline 20 >"$SP_TMP/client.out" 2>&1
host_agent_stop a TERM
AL=$(host_agent_log a)
check "tcp-connect logged" test "$(count "$AL" '.event.action == "tcp-connect"')" -ge 1
check "tcp-activity logged with --log-activity" test "$(count "$AL" '.event.action == "tcp-activity"')" -ge 1
check_eq "nothing else logged (but the start marker)" "$(count "$AL" '.event.action | IN("tcp-connect", "tcp-activity", "log-start") | not')" 0
sp_finish
