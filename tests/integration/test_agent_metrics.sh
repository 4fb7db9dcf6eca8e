#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `sockpulse agent` under connection churn in a namespace: /metrics passes `promtool check
# metrics`, carries every metric of docs/EVENTS.md, and holds exactly the values the churn made
# (connects, refusals, transitions, histogram count, TIME_WAIT sockets by destination); the
# log holds the same events; SIGTERM flushes the log and exits 0.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v promtool >/dev/null || skip "promtool not installed (Debian package prometheus)"
command -v curl >/dev/null || skip "curl not installed"

N=200
REFUSED=5
ns_new c
host_agent_start m c --sockdiag-interval 300ms || sp_finish
LOG=$(host_agent_log m)

bg_run "$SP_TMP/burst.out" nsx c "$SP_CONN" burst 127.0.0.1 5901 --count $N --deadline 60
wait_pid "$BG_PID" 60
check_eq "burst of $N connections completed" "$(kv "$SP_TMP/burst.out" burst failed)" 0
for ((i = 0; i < REFUSED; i++)); do
	nsx c "$SP_CONN" connect 127.0.0.1 5999 --timeout 5 >"$SP_TMP/refused.$i" 2>&1
done
check_eq "sp_conn saw $REFUSED refusals" "$(cat "$SP_TMP"/refused.* | grep -c 'result=ECONNREFUSED')" $REFUSED
TW_SS=$(nsx c ss -Htan state time-wait | wc -l)
log "ss counts $TW_SS TIME_WAIT sockets in the namespace"

check "connect counters reach the churn within 10 s" \
	wait_metric m 'sockpulse_tcp_connects_total{outcome="failure"}' -ge $REFUSED 10
# a sock_diag refresh that started after the churn: two more completed dumps
D0=$(metric "$SP_TMP/m.prom" sockpulse_sockdiag_dumps_total)
check "socket table refreshed after the churn" \
	wait_metric m sockpulse_sockdiag_dumps_total -ge $((D0 + 2)) 10
P=$SP_TMP/final.prom
check "scrape /metrics" scrape m "$P"

SP_CHECKS=$((SP_CHECKS + 1))
if promtool check metrics <"$P" >"$SP_TMP/promtool.out" 2>&1; then
	pass_check "promtool check metrics accepts the exposition"
else
	fail "promtool check metrics:"
	sed 's/^/    /' "$SP_TMP/promtool.out" | head -n 20
fi
check "Content-Type is text/plain; version=0.0.4" \
	bash -c "curl -sf --max-time 5 -D - -o /dev/null '${SP_METRICS_URL[m]}' | grep -qi '^content-type: text/plain; version=0.0.4'"
check_eq "/elsewhere is 404" "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "${SP_METRICS_URL[m]%/metrics}/elsewhere")" 404

# every family of docs/EVENTS.md (metrics.h adds its own)
for fam in tcp_state_transitions_total tcp_connects_total tcp_connect_failures_total \
	tcp_connect_duration_seconds tcp_keepalive_timeouts_total tcp_retransmit_timeouts_total \
	tcp_resets_total tcp_connections tcp_time_wait_sockets leases lease_expirations_total \
	connect_failure_spike_active connect_failure_spikes_total events_total events_lost_total \
	build_info; do
	check "family sockpulse_$fam is exposed" grep -q "^# TYPE sockpulse_$fam " "$P"
done

check_eq "connects: success" "$(metric "$P" 'sockpulse_tcp_connects_total{outcome="success"}')" $N
check_eq "connects: failure" "$(metric "$P" 'sockpulse_tcp_connects_total{outcome="failure"}')" $REFUSED
check_eq "connect failures: refused" "$(metric "$P" 'sockpulse_tcp_connect_failures_total{reason="refused"}')" $REFUSED
check_eq "connect failures: timeout" "$(metric "$P" 'sockpulse_tcp_connect_failures_total{reason="timeout"}')" 0
check_eq "histogram count (success)" "$(metric "$P" 'sockpulse_tcp_connect_duration_seconds_count{outcome="success"}')" $N
check_eq "histogram +Inf bucket equals count" "$(metric "$P" 'sockpulse_tcp_connect_duration_seconds_bucket{outcome="success",le="+Inf"}')" $N
check_eq "no loopback connect took over 0.9 s" "$(metric "$P" 'sockpulse_tcp_connect_duration_seconds_bucket{outcome="success",le="0.9"}')" $N
check_eq "transitions syn_sent -> established" "$(metric "$P" 'sockpulse_tcp_state_transitions_total{from="syn_sent",to="established"}')" $N
check_eq "transitions syn_sent -> close (refused)" "$(metric "$P" 'sockpulse_tcp_state_transitions_total{from="syn_sent",to="close"}')" $REFUSED
check_eq "transitions listen -> syn_recv" "$(metric "$P" 'sockpulse_tcp_state_transitions_total{from="listen",to="syn_recv"}')" $N
check_eq "events_total{kind=connect}" "$(metric "$P" 'sockpulse_events_total{kind="connect"}')" $((N + REFUSED))
check_eq "resets received (one per refusal)" "$(metric "$P" 'sockpulse_tcp_resets_total{direction="received"}')" $REFUSED
check_eq "nothing lost" "$(metric "$P" 'sockpulse_events_lost_total{kind="state"}')" 0
check_eq "TIME_WAIT gauge equals ss" "$(metric "$P" sockpulse_tcp_time_wait_sockets)" "$TW_SS"
check_eq "TIME_WAIT sockets counted for the burst's destination" \
	"$(metric "$P" 'sockpulse_tcp_time_wait_sockets_by_destination{destination="127.0.0.1:5901"}')" "$TW_SS"
check "build_info carries version, libbpf and hook" \
	grep -Eq '^sockpulse_build_info\{version="[^"]+",libbpf_version="[0-9]+\.[0-9]+",connect_hook="(fentry|kprobe|tracepoint)"\} 1$' "$P"
check_eq "leases: every burst connection ended" "$(metric "$P" 'sockpulse_leases{kind="transport",state="alive"}')" 0

# SIGTERM: the log gets everything and the agent exits 0
host_agent_stop m TERM
check "log ends with a newline" test "$(tail -c1 "$LOG" | od -An -c | tr -d ' ')" = '\n'
check "every log line is JSON" json_lines "$LOG"
check_eq "tcp-connect lines in the log" "$(count "$LOG" '.event.action == "tcp-connect"')" $((N + REFUSED))
check_eq "log sequence is 1..lines" "$(jq -s '[.[].event.sequence] == [range(1; length + 1)]' "$LOG")" true
check "log file mode 0640" test "$(stat -c %a "$LOG")" = 640
sp_finish
