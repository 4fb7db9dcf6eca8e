#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# "ready" means attached: a connection made right after the agent says ready must be reported.
# Every other test relies on this. The agent is started 8 times on a fresh namespace; each time
# 10 refused connects follow "ready" at once, 50 ms apart, and every one of them must have its
# tcp-connect line.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
for run in 1 2 3 4 5 6 7 8; do
	agent_start "r$run" c || sp_finish
	: >"$SP_TMP/conn$run.out"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		nsx c "$SP_CONN" connect 127.0.0.1 5999 --deadline 10 >>"$SP_TMP/conn$run.out" 2>&1
		sleep 0.05
	done
	agent_stop "r$run"
	missing=()
	for k in $(awk '$1 == "connect" { for (i = 2; i <= NF; i++) if ($i ~ /^cookie=/) print substr($i, 8) }' "$SP_TMP/conn$run.out"); do
		[ "$(count "$(agent_json "r$run")" ".event.action == \"tcp-connect\" and $(sock_is "$k")")" -eq 1 ] ||
			missing+=("$k")
	done
	check "run $run: the 10 connects made right after ready are all reported (missing cookies: ${missing[*]:-none})" \
		test ${#missing[@]} -eq 0 -a "$(grep -c '^connect' "$SP_TMP/conn$run.out")" -eq 10
done
sp_finish
