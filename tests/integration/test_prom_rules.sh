#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# contrib/prometheus: the rules load (`promtool check rules`), every alert has a summary and a
# description, and `promtool test rules` passes: each alert pending, firing and resolved on the
# series an agent exposes. No BPF, no traffic.
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || { echo "FAIL: promtool not installed (Debian package prometheus; make deps)"; exit 1; }

dir=$(cd "$(dirname "$0")/../../contrib/prometheus" && pwd)
rules=$dir/sockpulse-rules.yml

check "promtool check rules" promtool check rules "$rules"
for a in SockpulseConnectFailureSpike SockpulseLeaseExpired SockpulseStuckSocketLeak \
	SockpulsePortExhaustionRisk SockpulseEventsLost SockpulseAgentDown; do
	check "alert $a is defined" grep -q "^      - alert: $a\$" "$rules"
	check "alert $a is unit-tested" grep -q "alertname: $a\$" "$dir/sockpulse-rules.test.yml"
done
# each alert: labels.severity, annotations.summary and .description (the block up to the next rule)
n_bad=$(awk '/^      - (alert|record):/ { if (a && !(s && d && v)) bad++; a = /alert:/; s = d = v = 0 }
	/^          summary:/ { s = 1 } /^          description:/ { d = 1 } /^          severity:/ { v = 1 }
	END { if (a && !(s && d && v)) bad++; print bad + 0 }' "$rules")
check_eq "every alert has a severity, a summary and a description" "$n_bad" 0
SP_CHECKS=$((SP_CHECKS + 1))
if (cd "$dir" && promtool test rules sockpulse-rules.test.yml) >"$SP_TMP/test.out" 2>&1; then
	pass_check "promtool test rules"
else
	fail "promtool test rules:"
	sed 's/^/    /' "$SP_TMP/test.out" | head -n 40
fi
sp_finish
