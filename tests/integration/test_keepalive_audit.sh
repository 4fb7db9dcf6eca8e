#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Keepalive audit. Four clients in namespace c (whose sysctls say 600 s idle, 20 s interval,
# 4 probes) hold connections to a server in namespace s that keeps all four open:
#   k1  TCP_KEEPIDLE 7, TCP_KEEPINTVL 3, TCP_KEEPCNT 4     -> dead peer noticed after 19 s
#   k2  idle 5, interval 2, count 3, TCP_USER_TIMEOUT 9 s  -> 9 s (first check past 9 s)
#   k3  SO_KEEPALIVE only: the namespace's settings        -> 600 + 4 * 20 = 680 s
#   k4  no keepalive (nor the server's sockets)             -> never
# `sockpulse audit --json --connections` must give exactly these per connection, with the owning
# process, the rollup per service port and process, the text report, suggestions aimed at the
# port's lease TTL; the agent's /metrics must carry the same as a histogram per service port.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"

ns_new c
ns_new s
link_pair c s 8
SRV=10.8.0.2
nsx c sysctl -qw net.ipv4.tcp_keepalive_time=600 net.ipv4.tcp_keepalive_intvl=20 \
	net.ipv4.tcp_keepalive_probes=4
WATCH=(--netns-watch "$(ns_path c)" --netns-watch "$(ns_path s)")

# Held up to 100 s and ended by the test: in a TCG guest the audit and the agent's start-up took
# longer than a 20 s hold.
bg_run "$SP_TMP/srv.out" nsx s "$SP_CONN" serve $SRV 5801 --leak --count 4 --hold 100 --deadline 120
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "server did not listen"
declare -A OPTS=([k1]="--keepalive 7,3,4" [k2]="--keepalive 5,2,3 --user-timeout 9000"
	[k3]="--keepalive-on" [k4]="")
for k in k1 k2 k3 k4; do
	# shellcheck disable=SC2086 # the options are words
	bg_run "$SP_TMP/$k.out" nsx c "$SP_CONN" connect $SRV 5801 ${OPTS[$k]} --hold 100 --deadline 120
	wait_for "$SP_TMP/$k.out" '^connect ' 10 || fail "$k did not connect"
done
for ((i = 0; i < 100; i++)); do
	[ "$(grep -c '^accepted' "$SP_TMP/srv.out")" -ge 4 ] && break
	sleep 0.05
done

A=$SP_TMP/audit.json
"$SOCKPULSE" audit --json --connections "${WATCH[@]}" >"$A" 2>"$SP_TMP/audit.err"
check_eq "audit --json exits 0" "$?" 0
check "audit output is JSON lines" jq -e . "$A" >/dev/null
CTX='.event.action == "keepalive-audit-connection"'

conn() { # TAG DETECTION_FILTER SETTINGS_FILTER
	local k=$1
	expect "$k: $2" "$A" ".event.action == \"keepalive-audit-connection\"
		and $(sock_is "$(kv "$SP_TMP/$k.out" connect cookie)")
		and .network.direction == \"egress\" and .destination.port == 5801
		and .destination.ip == \"$SRV\" and .process.pid == $(kv "$SP_TMP/$k.out" connect pid)
		and .process.name == \"sp_conn\" and .sockpulse.audit.target_ms == 30000
		and $2 and $3"
}
conn k1 '.sockpulse.audit.idle_detection_ms == 19000' \
	'.sockpulse.keepalive == {"enabled":true,"idle_ms":7000,"interval_ms":3000,"probes":4,"source":"socket"}
	 and .sockpulse.audit.busy_detection_ms == 924600 and (.sockpulse.audit.suggested | not)'
conn k2 '.sockpulse.audit.idle_detection_ms == 9000' \
	'.sockpulse.keepalive.user_timeout_ms == 9000 and .sockpulse.audit.busy_detection_ms == 9000'
conn k3 '.sockpulse.audit.idle_detection_ms == 680000' \
	'.sockpulse.keepalive == {"enabled":true,"idle_ms":600000,"interval_ms":20000,"probes":4,"source":"sysctl"}
	 and .sockpulse.audit.suggested == {"idle_ms":15000,"interval_ms":5000,"probes":3,"user_timeout_ms":30000}'
conn k4 '(.sockpulse.audit | has("idle_detection_ms") | not)' \
	'.sockpulse.keepalive.enabled == false and .sockpulse.audit.suggested.idle_ms == 15000'

SPID=$(kv "$SP_TMP/srv.out" accepted pid)
expect_count "the server's four accepted connections, ingress, without keepalive" "$A" \
	".event.action == \"keepalive-audit-connection\" and .network.direction == \"ingress\"
	 and .destination.port == 5801 and .process.pid == $SPID
	 and .sockpulse.keepalive.enabled == false" 4
CTX='.event.action == "keepalive-audit"'
expect "rollup: the server's row" "$A" ".event.action == \"keepalive-audit\"
	and .destination.port == 5801 and .network.direction == \"ingress\" and .process.pid == $SPID
	and .sockpulse.audit.connections == 4 and .sockpulse.audit.without_keepalive == 4
	and (.sockpulse.audit | has(\"worst_detection_ms\") | not)"
expect "rollup: k1's row" "$A" ".event.action == \"keepalive-audit\"
	and .network.direction == \"egress\" and .process.pid == $(kv "$SP_TMP/k1.out" connect pid)
	and .sockpulse.audit.connections == 1 and .sockpulse.audit.worst_detection_ms == 19000
	and .sockpulse.audit.socket_options == 1"

# The text report, and a per-port lease TTL as the target.
T=$SP_TMP/audit.txt
"$SOCKPULSE" audit --lease-ttl 5801=20s "${WATCH[@]}" >"$T" 2>"$SP_TMP/audit.err"
check_eq "audit (text) exits 0" "$?" 0
check "text: the server's row: 4 connections, 4 without keepalive, never" \
	grep -Eq "^5801 +ingress +sp_conn\[$SPID\] +4 +4 +never +20s " "$T"
check "text: k3's row: 680 s is 11m20s, aimed at 20 s" \
	grep -Eq "^5801 +egress +sp_conn\[$(kv "$SP_TMP/k3.out" connect pid)\] +1 +0 +11m20s +20s +10m/20s/4 sysctl +SO_KEEPALIVE=1 TCP_KEEPIDLE=10 TCP_KEEPINTVL=3 TCP_KEEPCNT=3 TCP_USER_TIMEOUT=20000" "$T"
check "text: k1 (19 s) is within 20 s" \
	grep -Eq "^5801 +egress +sp_conn\[$(kv "$SP_TMP/k1.out" connect pid)\] +1 +0 +19s +20s .* ok$" "$T"

# Bad input: one line, exit 2.
"$SOCKPULSE" audit --netns-watch /nonexistent >"$SP_TMP/bad.out" 2>"$SP_TMP/bad.err"
check_eq "audit with a bad namespace exits 2" "$?" 2
check_eq "one line says why" "$(wc -l <"$SP_TMP/bad.err")" 1

# The agent: the same facts as metrics, per service port.
host_agent_start m - --audit-interval 1s "${WATCH[@]}" || sp_finish
P=$SP_TMP/m.prom
check "keepalive histogram appears" wait_metric m \
	'sockpulse_tcp_keepalive_detection_seconds_count{port="5801"}' -ge 3 10
scrape m "$P"
check_eq "histogram: 3 connections with keepalive on 5801" \
	"$(metric "$P" 'sockpulse_tcp_keepalive_detection_seconds_count{port="5801"}')" 3
check_eq "histogram: 1 within 10 s (k2)" \
	"$(metric "$P" 'sockpulse_tcp_keepalive_detection_seconds_bucket{port="5801",le="10"}')" 1
check_eq "histogram: 2 within 30 s (k1, k2)" \
	"$(metric "$P" 'sockpulse_tcp_keepalive_detection_seconds_bucket{port="5801",le="30"}')" 2
check_eq "histogram: 3 within 900 s (k3)" \
	"$(metric "$P" 'sockpulse_tcp_keepalive_detection_seconds_bucket{port="5801",le="900"}')" 3
check_eq "5 connections on 5801 without keepalive (k4, the server's 4)" \
	"$(metric "$P" 'sockpulse_tcp_connections_without_keepalive{port="5801"}')" 5
check_eq "worst detection on 5801 is never" \
	"$(metric "$P" 'sockpulse_tcp_keepalive_worst_detection_seconds{port="5801"}')" +Inf
if command -v promtool >/dev/null; then
	check "promtool accepts the exposition" sh -c "promtool check metrics <'$P' >/dev/null 2>&1"
fi
host_agent_stop m
unset CTX
# the helpers, by their own pids (the background jobs are shells around them)
for f in srv k1 k2 k3 k4; do
	kill -TERM "$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^pid=/) { print substr($i, 5); exit } }' \
		"$SP_TMP/$f.out")" 2>/dev/null
done
sp_finish
