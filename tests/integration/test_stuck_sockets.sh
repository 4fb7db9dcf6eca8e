#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Stuck half-closed connections (--stuck-after 2s), client namespace c, server namespace s:
#   5701: the server leaks the accepted socket (never reads, never closes) and the client
#         closes: the server's socket sits in CLOSE_WAIT -> one tcp-stuck start for it with the
#         server's pid; when the server exits (6 s) the socket goes and a tcp-stuck end follows;
#   5702: leaked before the agent started: found in the socket table (since_start);
#   5703: the client half-closes (shutdown SHUT_WR) and the peer never closes: the client's
#         socket sits in FIN_WAIT2 -> tcp-stuck fin_wait2 with the client's pid;
#   5704: a well-behaved pair closes at once: no tcp-stuck;
#   5705: one server leaks three sockets: its third alert counts three, growing;
#   5706, 5707: 5701 and 5703 with the connection made (and accepted) before the agent, closed
#         (half-closed) after its start: the same alerts, each with its owner and its direction,
#         and the client's lines name the client.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
ns_new s
link_pair c s 7
SRV=10.7.0.2

serve() { # TAG PORT ARGS...
	local tag=$1 port=$2
	shift 2
	bg_run "$SP_TMP/$tag.out" nsx s "$SP_CONN" serve $SRV "$port" --deadline 70 "$@"
	wait_for "$SP_TMP/$tag.out" '^listening' 10 || fail "$tag: server did not listen"
}
client() { # TAG PORT ARGS...
	local tag=$1 port=$2
	shift 2
	bg_run "$SP_TMP/$tag.out" nsx c "$SP_CONN" connect $SRV "$port" --deadline 70 "$@"
}

# The servers of the connections made before the agent hold their leaked sockets from the
# agent's start ($GO), however long that takes on a slow machine.
GO=$SP_TMP/go
# Before the agent: a socket already in CLOSE_WAIT.
serve pre 5702 --leak --count 1 --wait-file "$GO" --hold 14
client precli 5702 --hold 0.1
wait_for "$SP_TMP/pre.out" '^accepted' 10 || fail "pre: no accept"
wait_pid "$BG_PID" 10
# Before the agent, ending after its start: a leaked CLOSE_WAIT and a FIN_WAIT2 to be.
serve pcw 5706 --leak --count 1 --wait-file "$GO" --hold 12
client pcwcli 5706 --wait-file "$GO"
serve pfw 5707 --leak --count 1 --wait-file "$GO" --hold 12
client pfwcli 5707 --wait-file "$GO" --shutdown-wr --hold 10
wait_for "$SP_TMP/pcw.out" '^accepted' 10 || fail "pcw: no accept"
wait_for "$SP_TMP/pfw.out" '^accepted' 10 || fail "pfw: no accept"
sleep 0.5

agent_start ag - --stuck-after 2s --netns-watch "$(ns_path s)" --netns-watch "$(ns_path c)" ||
	sp_finish
touch "$GO"

serve cw 5701 --leak --count 1 --hold 6
client cwcli 5701 --hold 0.2
serve fw 5703 --leak --count 1 --hold 12
client fwcli 5703 --shutdown-wr --hold 10
serve ok 5704 --count 1 --hold 5
client okcli 5704 --hold 0.2
serve leak3 5705 --leak --count 3 --hold 12
for i in 1 2 3; do
	client "l3cli$i" 5705 --hold 0.1
	sleep 1.5
done

for t in cw pre ok fw leak3 pcw pfw; do
	wait_for "$SP_TMP/$t.out" '^end ' 30 || fail "$t: server did not finish"
done
wait_for "$SP_TMP/fwcli.out" '^end ' 20 || fail "fwcli: client did not finish"
wait_for "$SP_TMP/pfwcli.out" '^end ' 20 || fail "pfwcli: client did not finish"
sleep 0.5
agent_stop ag
J=$(agent_json ag)
CTX='.event.action == "tcp-stuck"'

stuck() { # DESC COOKIE STATE PID [extra jq]
	expect "$1" "$J" ".event.action == \"tcp-stuck\" and .event.kind == \"alert\"
		and .event.type == [\"start\"] and $(sock_is "$2")
		and .sockpulse.stuck.state == \"$3\" and .sockpulse.stuck.after_ms == 2000
		and .sockpulse.stuck.age_ms >= 2000 and .process.pid == $4
		and .process.name == \"sp_conn\" ${5:-}"
	expect_count "$1: one start line" "$J" \
		".event.action == \"tcp-stuck\" and .event.type == [\"start\"] and $(sock_is "$2")" 1
}

CW=$(kv "$SP_TMP/cw.out" accepted cookie)
stuck "close_wait: the leaking server's socket" "$CW" close_wait "$(kv "$SP_TMP/cw.out" accepted pid)" \
	"and .network.direction == \"ingress\" and .destination.port == 5701
	 and .sockpulse.stuck.process.sockets == 1 and (.sockpulse.stuck.since_start | not)"
expect "close_wait: an end line when the server finally exits" "$J" \
	".event.action == \"tcp-stuck\" and .event.type == [\"end\"] and $(sock_is "$CW")
	 and .event.duration >= 5000000000 and .sockpulse.stuck.state == \"close_wait\""

PRE=$(kv "$SP_TMP/pre.out" accepted cookie)
stuck "close_wait before the start: found in the socket table" "$PRE" close_wait \
	"$(kv "$SP_TMP/pre.out" accepted pid)" "and .sockpulse.stuck.since_start == true"

FW=$(kv "$SP_TMP/fwcli.out" connect cookie)
check_eq "fin_wait2: the client half-closed" "$(kv "$SP_TMP/fwcli.out" shutdown how)" wr
stuck "fin_wait2: the half-closed client's socket" "$FW" fin_wait2 \
	"$(kv "$SP_TMP/fwcli.out" connect pid)" "and .network.direction == \"egress\""
stuck "close_wait: its peer, the server that never closes" "$(kv "$SP_TMP/fw.out" accepted cookie)" \
	close_wait "$(kv "$SP_TMP/fw.out" accepted pid)"

expect_none "a pair that closes at once is never stuck" "$J" \
	".event.action == \"tcp-stuck\" and ($(sock_is "$(kv "$SP_TMP/ok.out" accepted cookie)")
	 or $(sock_is "$(kv "$SP_TMP/okcli.out" connect cookie)"))"

L3PID=$(kv "$SP_TMP/leak3.out" accepted pid)
expect_count "rollup: three alerts for the leaking process" "$J" \
	".event.action == \"tcp-stuck\" and .event.type == [\"start\"] and .process.pid == $L3PID" 3
expect "rollup: the third says three stuck sockets, growing" "$J" \
	".event.action == \"tcp-stuck\" and .event.type == [\"start\"] and .process.pid == $L3PID
	 and .sockpulse.stuck.process.sockets == 3 and .sockpulse.stuck.process.trend == \"growing\""

# made before the agent
PCW=$(kv "$SP_TMP/pcw.out" accepted cookie)
stuck "close_wait, connection older than the agent: the leaking server's socket" "$PCW" close_wait \
	"$(kv "$SP_TMP/pcw.out" accepted pid)" "and .network.direction == \"ingress\"
	 and .destination.port == 5706 and .sockpulse.stuck.process.sockets == 1"
PFW=$(kv "$SP_TMP/pfwcli.out" connect cookie)
check_eq "fin_wait2, connection older than the agent: the client half-closed" \
	"$(kv "$SP_TMP/pfwcli.out" shutdown how)" wr
stuck "fin_wait2, connection older than the agent: the half-closed client's socket" "$PFW" fin_wait2 \
	"$(kv "$SP_TMP/pfwcli.out" connect pid)" "and .network.direction == \"egress\"
	 and .destination.port == 5707"
stuck "close_wait, connection older than the agent: its peer, the server that never closes" \
	"$(kv "$SP_TMP/pfw.out" accepted cookie)" close_wait "$(kv "$SP_TMP/pfw.out" accepted pid)" \
	"and .network.direction == \"ingress\" and .destination.port == 5707"
for t in pcwcli pfwcli; do
	k=$(kv "$SP_TMP/$t.out" connect cookie)
	pid=$(kv "$SP_TMP/$t.out" connect pid)
	CTX=$(sock_is "$k")
	expect "$t: the client's own close() or shutdown() names it" "$J" "
		$(sock_is "$k") and .sockpulse.old_state == \"established\"
		and .sockpulse.new_state == \"fin_wait1\" and .process.pid == $pid"
	expect_none "$t: every line of the client's socket names sp_conn[$pid], egress" "$J" "
		$(sock_is "$k") and (.process.pid != $pid or .process.name != \"sp_conn\"
		or .network.direction != \"egress\")"
done
unset CTX
sp_finish
