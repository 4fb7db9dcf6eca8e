#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Coalesced inbound activity (tcp-activity), IPv4 and IPv6. The server sends 30 chunks of 100
# bytes 100 ms apart (TCP_NODELAY: one segment each), pauses 1.5 s, sends a last chunk of 100 bytes
# and closes. With --coalesce 1s the client's socket gets at most one line per second, each line
# counting what arrived since the previous one. The last chunk opens a new interval, so its line
# accounts for everything before it: the payload_bytes of all lines sum to exactly 3100.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
ns_new s
link_pair c s 6
agent_start cli c --coalesce 1s || sp_finish

declare -A SRV=([4]=10.6.0.2 [6]=fd00:6::2)
PIDS=()
for f in 4 6; do
	bg_run "$SP_TMP/srv$f.out" nsx s "$SP_CONN" serve "${SRV[$f]}" 5601 --chunks 30,100,100 --tail 1500,100 \
		--hold 0.3 --deadline 30
	PIDS+=("$BG_PID")
	wait_for "$SP_TMP/srv$f.out" '^listening' 10 || fail "v$f server did not listen"
	bg_run "$SP_TMP/cli$f.out" nsx c "$SP_CONN" connect "${SRV[$f]}" 5601 --hold 15 --deadline 30
	PIDS+=("$BG_PID")
done
for pid in "${PIDS[@]}"; do
	wait_pid "$pid" 25 || fail "a helper did not finish within 25 s"
done
agent_stop cli
C=$(agent_json cli)

for f in 4 6; do
	o=$SP_TMP/cli$f.out
	check_eq "v$f client received everything then EOF" "$(kv "$o" end reason),$(kv "$o" end bytes_received)" "eof,3100"
	K=$(kv "$o" connect cookie)
	A="(.event.action == \"tcp-activity\" and $(sock_is "$K"))"
	CTX="$A"
	n=$(count "$C" "$A")
	check "v$f at least 3 activity lines for 4.4 s of paced data (got $n)" test "$n" -ge 3
	check "v$f at most one line per second (+1): $n lines for ~4.4 s" test "$n" -le 6
	expect_none "v$f every activity line: segments >= 1, payload_bytes >= 0, facts of the socket" "$C" "
		$A and ((.sockpulse.activity.segments | type) != \"number\" or .sockpulse.activity.segments < 1
			or (.sockpulse.activity.payload_bytes | type) != \"number\"
			or .network.direction != \"egress\" or .destination.ip != \"${SRV[$f]}\"
			or .destination.port != 5601)"
	check_eq "v$f payload_bytes over all lines = bytes sent by the peer" \
		"$(jq -s "[.[] | select($A) | .sockpulse.activity.payload_bytes] | add" "$C")" 3100
	segs=$(jq -s "[.[] | select($A) | .sockpulse.activity.segments] | add" "$C")
	check "v$f segments over all lines cover the 31 data segments (got $segs)" test "${segs:-0}" -ge 31
	# Consecutive lines of the socket at least one coalescing interval apart (10% slack).
	gaps=$(jq -rs "[.[] | select($A) | .[\"@timestamp\"] | sub(\"Z\$\"; \"\") | split(\".\") |
		((.[0] + \"Z\" | fromdateiso8601) + (\"0.\" + .[1] | tonumber))] |
		[range(1; length) as \$i | .[\$i] - .[\$i - 1]] | map(select(. < 0.9)) | length" "$C")
	check_eq "v$f no two activity lines of the socket closer than 0.9 s" "$gaps" 0
	last=$(jq -s "[.[] | select($A)] | last | .sockpulse.activity.payload_bytes" "$C")
	check_eq "v$f the last chunk (after the pause) opened its own line of 100 bytes or more" \
		"$(test "${last:-0}" -ge 100 && echo yes)" yes
done
unset CTX
sp_finish
