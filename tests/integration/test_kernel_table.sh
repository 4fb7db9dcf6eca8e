#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The kernel side's socket table (sk_infos, keyed by socket cookie) and its listener table
# (listen_owners): an entry lives while its socket does and goes when the socket closes, for
# every way a socket ends and for every socket the agent sees, whatever its filters:
#   - a held connection has its entry while it lives, in both ends' tables: the check can see a
#     leak (an agent whose port filter drops it has one too, made by tcp_probe for its verdict);
#   - after normal closes, resets either way, refused connects, connections older than the agent
#     and the listeners' closes, none of the test's sockets is left in either agent's table, and
#     no listener of the test's namespace in the listener table;
#   - a table too small (--max-sockets 1024) for 2200 live sockets: the agent counts the sockets
#     that went without an entry and says so at exit; with room, nothing is said.
# The test's sockets are named by the cookies in the unfiltered agent's lines, so entries of the
# host's other sockets (another run's, say) are not counted.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v bpftool >/dev/null || skip "bpftool not installed"

# agent_map TAG NAME: the id of the BPF map NAME held by agent TAG.
agent_map() {
	local pid=${SP_AGENT_PID[$1]} f id
	for f in /proc/"$pid"/fdinfo/*; do
		id=$(awk '/^map_id:/ { print $2 }' "$f" 2>/dev/null)
		[ -n "$id" ] || continue
		[ "$(bpftool -j map show id "$id" 2>/dev/null | jq -r .name)" = "$2" ] && {
			echo "$id"
			return 0
		}
	done
	return 1
}

# keys ID: the map's keys, one per line (cookies as numbers; listener keys as JSON).
keys() { bpftool -j map dump id "$1" 2>/dev/null | jq -c '.[].formatted.key'; }

ns_new t
NS_INUM=$(ns_inode t)
ADDR=127.0.0.1
GO=$SP_TMP/go
PIDS=()

# Older than the agents: accepted, then data both ways once the agents are up (GO), then closed.
bg_run "$SP_TMP/old-srv.out" nsx t "$SP_CONN" serve "$ADDR" 6001 --wait-file "$GO" \
	--chunks 3,100,100 --hold 1 --deadline 120
PIDS+=("$BG_PID")
wait_for "$SP_TMP/old-srv.out" '^listening' 10 || fail "the older server did not listen"
bg_run "$SP_TMP/old-cli.out" nsx t "$SP_CONN" connect "$ADDR" 6001 --wait-file "$GO" \
	--send 100 --hold 2 --deadline 120
PIDS+=("$BG_PID")
wait_for "$SP_TMP/old-srv.out" '^accepted' 10 || fail "the older server did not accept"

agent_start all t || sp_finish
agent_start port t --port 6003 || sp_finish
touch "$GO"
SK_ALL=$(agent_map all sk_infos)
SK_PORT=$(agent_map port sk_infos)
LS_ALL=$(agent_map all listen_owners)
check "the agents' socket tables are found" test -n "$SK_ALL" -a -n "$SK_PORT" -a -n "$LS_ALL"

# A held connection, data both ways.
bg_run "$SP_TMP/held-srv.out" nsx t "$SP_CONN" serve "$ADDR" 6004 --chunks 3,100,100 --hold 150 \
	--deadline 160
PIDS+=("$BG_PID")
wait_for "$SP_TMP/held-srv.out" '^listening' 10 || fail "the held server did not listen"
bg_run "$SP_TMP/held-cli.out" nsx t "$SP_CONN" connect "$ADDR" 6004 --send 100 --hold 150 \
	--deadline 160
HELD_CLI=$BG_PID
PIDS+=("$BG_PID")
wait_for "$SP_TMP/held-srv.out" '^accepted' 10 || fail "the held server did not accept"
wait_for "$SP_TMP/held-cli.out" '^connect ' 10 || fail "the held client did not connect"
sleep 1.5 # the chunks (300 ms) and their activity

# While it lives, the held connection's ends are in the tables.
ALL_JSON=$(agent_json all)
HELD_COOKIES="$(kv "$SP_TMP/held-cli.out" connect cookie) $(kv "$SP_TMP/held-srv.out" accepted cookie)"
check_eq "sp_conn names the held connection's two ends" "$(echo $HELD_COOKIES | wc -w)" 2
keys "$SK_ALL" >"$SP_TMP/all-live.keys"
keys "$SK_PORT" >"$SP_TMP/port-live.keys"
for k in $HELD_COOKIES; do
	check "while it lives, end $k has its entry" grep -qx "$k" "$SP_TMP/all-live.keys"
	check "and one in the filtering agent's table (its verdict)" grep -qx "$k" "$SP_TMP/port-live.keys"
done
# Normal closes with data, resets either way, refused connects.
bg_run "$SP_TMP/fin-srv.out" nsx t "$SP_CONN" serve "$ADDR" 6002 --count 10 --echo --hold 0.3 \
	--deadline 150
PIDS+=("$BG_PID")
bg_run "$SP_TMP/rst-srv.out" nsx t "$SP_CONN" serve "$ADDR" 6003 --count 10 --hold 0.2 --linger0 \
	--deadline 150
PIDS+=("$BG_PID")
bg_run "$SP_TMP/rstc-srv.out" nsx t "$SP_CONN" serve "$ADDR" 6005 --count 10 --hold 2 --deadline 150
PIDS+=("$BG_PID")
for srv in fin rst rstc; do
	wait_for "$SP_TMP/$srv-srv.out" '^listening' 10 || fail "the $srv server did not listen"
done
# Listeners made after the agents start have their owners in the listener table.
keys "$LS_ALL" >"$SP_TMP/listeners.keys"
for p in 6002 6003 6004 6005; do
	check "the listener on $p is in the listener table" test "$(jq -c --argjson n "$NS_INUM" \
		--argjson p "$p" 'select(.netns == $n and .port == $p)' "$SP_TMP/listeners.keys" |
		grep -c .)" = 1
done

for ((i = 0; i < 10; i++)); do
	nsx t "$SP_CONN" connect "$ADDR" 6002 --send 100 --hold 2 --deadline 10 >/dev/null 2>&1 ||
		fail "fin connection $i failed"
	nsx t "$SP_CONN" connect "$ADDR" 6003 --hold 1 --deadline 10 >/dev/null 2>&1
	nsx t "$SP_CONN" connect "$ADDR" 6005 --send 50 --hold 0.1 --linger0 --deadline 10 \
		>/dev/null 2>&1 || fail "client-reset connection $i failed"
	nsx t "$SP_CONN" connect "$ADDR" 6009 --deadline 10 >/dev/null 2>&1
done

kill -INT "$HELD_CLI" 2>/dev/null
for pid in "${PIDS[@]}"; do
	kill -INT "$pid" 2>/dev/null
	wait_pid "$pid" 20
done
sleep 1 # the last closes (FIN_WAIT2 -> CLOSE through timewait, LAST_ACK's final ACK)

COOKIES=$(jq -r 'select(.sockpulse.sock != null) | .sockpulse.sock' "$ALL_JSON" | sort -u)
NCOOK=$(echo "$COOKIES" | grep -c .)
check "the lines name over 60 of the test's sockets" test "$NCOOK" -gt 60
echo "$COOKIES" >"$SP_TMP/cookies"
keys "$SK_ALL" >"$SP_TMP/all.keys"
keys "$SK_PORT" >"$SP_TMP/port.keys"
check_eq "none of the $NCOOK sockets is left in the agent's table" \
	"$(grep -cxFf "$SP_TMP/cookies" "$SP_TMP/all.keys")" 0
check_eq "nor in the port-filtered agent's table" \
	"$(grep -cxFf "$SP_TMP/cookies" "$SP_TMP/port.keys")" 0
check_eq "no listener of the test's namespace is left in the listener table" \
	"$(keys "$LS_ALL" | jq -c --argjson n "$NS_INUM" 'select(.netns == $n)' | grep -c .)" 0

# The same sockets' lines still carry what the entries held: durations, owners, old states.
expect "a reset sent by an abortive close names the state it left" "$ALL_JSON" '
	.event.action == "tcp-reset" and .sockpulse.reset.direction == "sent"
	and .sockpulse.old_state == "established" and .process.name == "sp_conn"'
expect "an accepted socket has its listener's owner" "$ALL_JSON" '
	.event.action == "tcp-state-change" and .sockpulse.new_state == "syn_recv"
	and .process.name == "sp_conn" and .sockpulse.owner.source == "listener"'
expect "an established connection's close carries its duration" "$ALL_JSON" '
	.event.action == "tcp-state-change" and .sockpulse.old_state == "established"
	and .event.duration > 0'
agent_stop all
agent_stop port
check "with room for every socket, no agent says a socket went without" \
	test "$(grep -c "had no room" "$(agent_err all)" "$(agent_err port)" | awk -F: '{ n += $2 } END { print n }')" = 0

# A table too small for what lives (--max-sockets 1024): 1100 connections held in a listener's
# accept queue are 2200 sockets. Those past the table's size go without an entry, and the agent
# counts them and says so when it stops.
ulimit -n 8192 2>/dev/null || true
ns_new f
bg_run "$SP_TMP/full-srv.out" nsx f "$SP_CONN" serve "$ADDR" 6101 --no-accept --backlog 4096 \
	--hold 150 --deadline 160
wait_for "$SP_TMP/full-srv.out" '^listening' 10 || fail "the queueing server did not listen"
agent_start small f --max-sockets 1024 || sp_finish
nsx f "$SP_CONN" fill "$ADDR" 6101 --count 1100 --hold 1 --deadline 120 >"$SP_TMP/fill.out" 2>&1
check "1100 connections were opened and held" grep -q "fill opened=1100 result=ok" "$SP_TMP/fill.out"
agent_stop small
check "the agent with room for 1024 sockets says how many went without" \
	grep -Eq "summary: [0-9]+ events of sockets the kernel's socket table had no room for" \
	"$(agent_err small)"
sp_finish
