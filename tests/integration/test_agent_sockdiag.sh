#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The socket table (sock_diag). Connections opened before the agent starts are found at once:
# the ready line counts them, sockpulse_tcp_connections and sockpulse_leases show them before
# they send a single segment; when they later close, the BPF side's events (same socket
# cookies) end their leases. The TIME_WAIT gauge equals `ss -tan state time-wait` in a churned
# namespace, in total and for the burst's destination. --netns-watch adds a namespace.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"
command -v ss >/dev/null || skip "ss (iproute2) not installed"

ns_new c
ns_new o
# three connections held open until the test ends them, made before the agent exists (a fixed
# hold ran out in a TCG guest before the agent had loaded)
bg_run "$SP_TMP/srv.out" nsx c "$SP_CONN" serve 127.0.0.1 6001 --count 3 --hold 50 --deadline 60
SRV=$BG_PID
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "server did not listen"
CLIENTS=()
for i in 1 2 3; do
	bg_run "$SP_TMP/cli$i.out" nsx c "$SP_CONN" connect 127.0.0.1 6001 --hold 50 --deadline 60
	CLIENTS+=("$BG_PID")
done
for i in 1 2 3; do
	wait_for "$SP_TMP/cli$i.out" '^connect ' 10 || fail "client $i did not connect"
done
# churn: TIME_WAIT sockets (client side closes first)
nsx c "$SP_CONN" burst 127.0.0.1 6002 --count 150 --deadline 60 >"$SP_TMP/burst.out"
# a second namespace with TIME_WAIT of its own, watched with --netns-watch
nsx o "$SP_CONN" burst 127.0.0.1 6003 --count 40 --deadline 60 >"$SP_TMP/burst-o.out"
EST_SS=$(nsx c ss -Htan state established | wc -l)
TW_SS=$(nsx c ss -Htan state time-wait | wc -l)
TW_O=$(nsx o ss -Htan state time-wait | wc -l)
check_eq "ss sees the 6 established sockets (3 connections, both ends)" "$EST_SS" 6

host_agent_start d c --sockdiag-interval 500ms || sp_finish
check "the ready line counts the 6 connections found open" \
	grep -q "sock_diag on (1 namespaces, 6 established connections seeded)" "$SP_TMP/d.err"
check "scrape" scrape d "$SP_TMP/d1.prom"
P=$SP_TMP/d1.prom
check_eq "sockpulse_tcp_connections{state=established} at once" "$(metric "$P" 'sockpulse_tcp_connections{state="established"}')" 6
check_eq "listeners" "$(metric "$P" 'sockpulse_tcp_connections{state="listen"}')" 1
check_eq "transport leases alive for connections older than the agent" "$(metric "$P" 'sockpulse_leases{kind="transport",state="alive"}')" 6
check_eq "no payload lease before inbound data" "$(metric "$P" 'sockpulse_leases{kind="payload",state="alive"}')" 0
check_eq "TIME_WAIT gauge equals ss" "$(metric "$P" sockpulse_tcp_time_wait_sockets)" "$TW_SS"
check_eq "TIME_WAIT state gauge agrees" "$(metric "$P" 'sockpulse_tcp_connections{state="time_wait"}')" "$TW_SS"
check_eq "TIME_WAIT by destination: the burst's listener" \
	"$(metric "$P" 'sockpulse_tcp_time_wait_sockets_by_destination{destination="127.0.0.1:6002"}')" "$TW_SS"
check_eq "TIME_WAIT by destination: nothing else" \
	"$(metric "$P" 'sockpulse_tcp_time_wait_sockets_by_destination{destination="other"}')" 0

# the old connections end (the clients exit, then the server reads EOF and exits): their leases
# end through the BPF side's events, matched by socket cookie
for i in 1 2 3; do # the helper's own pid (the background job is a shell around it)
	kill -TERM "$(kv "$SP_TMP/cli$i.out" connect pid)" 2>/dev/null
done
for pid in "${CLIENTS[@]}" "$SRV"; do
	wait_pid "$pid" 30 || fail "a held connection did not end"
done
check "leases of the old connections end when they close" \
	wait_metric d 'sockpulse_leases{kind="transport",state="alive"}' -eq 0 10
check "established gauge follows within a refresh" \
	wait_metric d 'sockpulse_tcp_connections{state="established"}' -eq 0 10
host_agent_stop d TERM

# --netns-watch: both namespaces are counted together
host_agent_start w c --netns-watch "$(ns_path o)" || sp_finish
check "the ready line says 2 namespaces" grep -q "sock_diag on (2 namespaces" "$SP_TMP/w.err"
check "scrape" scrape w "$SP_TMP/w.prom"
TW_C=$(nsx c ss -Htan state time-wait | wc -l)
check_eq "TIME_WAIT over both namespaces equals ss in each, summed" \
	"$(metric "$SP_TMP/w.prom" sockpulse_tcp_time_wait_sockets)" "$((TW_C + TW_O))"
check_eq "the other namespace's destination" \
	"$(metric "$SP_TMP/w.prom" 'sockpulse_tcp_time_wait_sockets_by_destination{destination="127.0.0.1:6003"}')" "$TW_O"
host_agent_stop w TERM
sp_finish
