#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The fleet path end to end, on loopback: a real Prometheus (1 s scrape and evaluation, the rules
# of contrib/prometheus) scrapes `sockpulse agent` while a client in a systemd-shaped cgroup makes
# refused connects to one destination. SockpulseConnectFailureSpike must become firing in
# Prometheus' /api/v1/alerts, then reach a real Alertmanager's /api/v2/alerts with its service and
# destination labels. The same Prometheus then evaluates every query of the Grafana dashboard
# (contrib/grafana), each of whose metrics must be in the agent's /metrics, as must the series
# the rules' unit tests feed. Own temporary directories, free loopback ports, everything stopped.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
for cmd in prometheus prometheus-alertmanager promtool curl python3; do
	command -v $cmd >/dev/null || { echo "FAIL: $cmd not installed (make deps)"; exit 1; }
done

root=$(cd "$(dirname "$0")/../.." && pwd)
RULES=$root/contrib/prometheus/sockpulse-rules.yml
RULES_TEST=$root/contrib/prometheus/sockpulse-rules.test.yml
DASH=$root/contrib/grafana/sockpulse-dashboard.json
UNIT=sp-e2e-$$.service
DEST_PORT=7999

# free_ports N: N loopback TCP ports nobody listens on now
free_ports() {
	python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

cg_new e2e || skip "no cgroup2 mount in /proc/mounts"
cg_sub "system.slice/$UNIT" || { fail "cannot make the unit's cgroup"; sp_finish; }
SVC_CG=$SUB
ns_new c
host_agent_start m c --log off || sp_finish
AGENT=${SP_METRICS_URL[m]#http://}
AGENT=${AGENT%/metrics}

read -r PROM_PORT AM_PORT <<<"$(free_ports 2)"
mkdir -p "$SP_TMP/prom" "$SP_TMP/am"
cat >"$SP_TMP/am/alertmanager.yml" <<EOT
route:
  receiver: fleet
  group_by: [alertname, instance, service, destination]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: fleet
EOT
cat >"$SP_TMP/prom/prometheus.yml" <<EOT
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AM_PORT']
scrape_configs:
  - job_name: sockpulse
    static_configs:
      - targets: ['$AGENT']
EOT
check "alertmanager config is valid" bash -c \
	"command -v amtool >/dev/null || exit 0; amtool check-config '$SP_TMP/am/alertmanager.yml' >/dev/null"
check "prometheus config is valid" promtool check config "$SP_TMP/prom/prometheus.yml"

bg_run "$SP_TMP/am.log" prometheus-alertmanager --config.file="$SP_TMP/am/alertmanager.yml" \
	--storage.path="$SP_TMP/am/data" --web.listen-address="127.0.0.1:$AM_PORT" \
	--cluster.listen-address=
AM_PID=$BG_PID
bg_run "$SP_TMP/prom.log" prometheus --config.file="$SP_TMP/prom/prometheus.yml" \
	--storage.tsdb.path="$SP_TMP/prom/data" --web.listen-address="127.0.0.1:$PROM_PORT"
PROM_PID=$BG_PID
PROM=http://127.0.0.1:$PROM_PORT
AM=http://127.0.0.1:$AM_PORT

# until_ok SECONDS CMD...: retries CMD every 0.5 s
until_ok() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 2; i++)); do
		"$@" && return 0
		sleep 0.5
	done
	return 1
}
check "alertmanager is ready" until_ok 30 curl -sf -o /dev/null "$AM/-/ready"
check "prometheus is ready" until_ok 30 curl -sf -o /dev/null "$PROM/-/ready"
target_up() {
	curl -sf "$PROM/api/v1/query?query=up%7Bjob%3D%22sockpulse%22%7D" |
		jq -e '.data.result[0].value[1] == "1"' >/dev/null
}
check "prometheus scrapes the agent" until_ok 30 target_up

# the workload: refused connects from the unit to one destination, enough for a spike
for ((i = 0; i < 30; i++)); do
	cg_run "$SVC_CG" ip netns exec "$(ns_name c)" "$SP_CONN" connect 127.0.0.1 $DEST_PORT \
		--deadline 5 >/dev/null 2>&1
	sleep 0.05
done

prom_firing() {
	curl -sf "$PROM/api/v1/alerts" >"$SP_TMP/prom-alerts.json" &&
		jq -e --arg s "$UNIT" --arg d "127.0.0.1:$DEST_PORT" '.data.alerts[] |
			select(.labels.alertname == "SockpulseConnectFailureSpike" and .state == "firing"
			       and .labels.service == $s and .labels.destination == $d)' \
			"$SP_TMP/prom-alerts.json" >/dev/null
}
am_has() {
	curl -sf "$AM/api/v2/alerts" >"$SP_TMP/am-alerts.json" &&
		jq -e --arg s "$UNIT" --arg d "127.0.0.1:$DEST_PORT" '.[] |
			select(.labels.alertname == "SockpulseConnectFailureSpike"
			       and .labels.service == $s and .labels.destination == $d
			       and .status.state == "active" and (.annotations.summary | length > 0))' \
			"$SP_TMP/am-alerts.json" >/dev/null
}
if until_ok 60 prom_firing; then
	pass_check "Prometheus: SockpulseConnectFailureSpike firing for $UNIT -> 127.0.0.1:$DEST_PORT"
else
	fail "Prometheus: no firing spike alert with service and destination within 60 s"
	sed 's/^/    /' "$SP_TMP/prom-alerts.json" 2>/dev/null | head -c 2000
fi
if until_ok 30 am_has; then
	pass_check "Alertmanager: the alert arrived with its service and destination labels"
else
	fail "Alertmanager: the spike alert did not arrive within 30 s"
	sed 's/^/    /' "$SP_TMP/am-alerts.json" 2>/dev/null | head -c 2000
fi
expect_none_alert() {
	jq -e '.data.alerts[] | select(.labels.alertname == "SockpulseAgentDown")' \
		"$SP_TMP/prom-alerts.json" >/dev/null
}
SP_CHECKS=$((SP_CHECKS + 1))
if expect_none_alert; then fail "SockpulseAgentDown fired for a running agent"; else pass_check "no agent-down alert"; fi

# the Grafana dashboard: valid JSON, every query evaluates, every metric is the agent's
P=$SP_TMP/agent.prom
check "scrape the agent" scrape m "$P"
check "dashboard is valid JSON" jq -e '.panels | length > 0' "$DASH"
jq -r '.panels[].targets[].expr' "$DASH" >"$SP_TMP/exprs"
check "dashboard has queries" test -s "$SP_TMP/exprs"
while IFS= read -r e; do
	q=${e//\$__rate_interval/1m}
	q=${q//\$instance/.*}
	SP_CHECKS=$((SP_CHECKS + 1))
	if promtool query instant "$PROM" "$q" >"$SP_TMP/q.out" 2>&1; then
		pass_check "dashboard query evaluates: $e"
	else
		fail "dashboard query: $e: $(head -n 2 "$SP_TMP/q.out")"
	fi
done <"$SP_TMP/exprs"
for name in $(grep -o 'sockpulse_[a-z0-9_]*' "$SP_TMP/exprs" | sort -u); do
	check "dashboard metric $name is in /metrics" grep -q "^$name[{ ]" "$P"
done
vars=$(jq -r '.templating.list[] | select(.type == "query") | .definition' "$DASH")
for name in $(grep -o 'sockpulse_[a-z0-9_]*' <<<"$vars" | sort -u); do
	check "dashboard variable's metric $name is in /metrics" grep -q "^$name[{ ]" "$P"
done

# the rules' unit-test inputs: each metric the agent exposes now has the label names the test
# gives it (instance and job come from the scrape)
grep -o "series: '[a-z_]*{[^}]*}'" "$RULES_TEST" | sed "s/^series: '//; s/'\$//" | sort -u |
	while IFS= read -r s; do
		name=${s%%\{*}
		[ "$name" = up ] && continue
		want=$(sed 's/.*{//; s/}$//' <<<"$s" | tr ',' '\n' | sed 's/=.*//' |
			grep -vx -e instance -e job | sort | tr '\n' ,)
		have=$(grep "^$name{" "$P" | head -n1 | sed 's/.*{//; s/}.*//' | tr ',' '\n' |
			sed 's/=.*//' | sort | tr '\n' ,)
		if [ -z "$have" ]; then
			# not exposed right now (no port alert open): documented, at least
			grep -q "\`$name\`" "$root/docs/EVENTS.md" && echo "ok-doc $name" || echo "bad $name absent"
		elif [ "$want" = "$have" ]; then
			echo "ok $name"
		else
			echo "bad $name labels $want vs $have"
		fi
	done >"$SP_TMP/inputs.txt"
check_eq "rules test inputs match the agent's metrics" "$(grep -c '^bad' "$SP_TMP/inputs.txt")" 0
grep '^bad' "$SP_TMP/inputs.txt" | sed 's/^/    /'

# stop everything: the agent, Prometheus, Alertmanager (by pid)
host_agent_stop m
for pid in "$PROM_PID" "$AM_PID"; do
	kill -TERM "$pid" 2>/dev/null
	wait_pid "$pid" 20 || fail "pid $pid did not stop within 20 s"
done
sp_finish
