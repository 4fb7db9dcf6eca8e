#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The configuration file: bad lines are refused before anything is loaded, with exit status 2
# and the file and line number; a good file configures the agent, and flags on the command line
# win over it.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

# bad_config DESC EXPECTED-STDERR-FRAGMENT: the file content on stdin
bad_config() {
	local desc=$1 want=$2 f=$SP_TMP/bad.conf rc
	cat >"$f"
	"$SOCKPULSE" agent --config "$f" --metrics off --log off --duration 1 \
		>"$SP_TMP/bad.out" 2>"$SP_TMP/bad.err"
	rc=$?
	check_eq "$desc: exit status 2" "$rc" 2
	SP_CHECKS=$((SP_CHECKS + 1))
	if grep -qF -- "$f:$want" "$SP_TMP/bad.err" && [ "$(wc -l <"$SP_TMP/bad.err")" -eq 1 ]; then
		pass_check "$desc: one line naming $f:$want"
	else
		fail "$desc: stderr lacks '$f:$want' (or has more than one line):"
		sed 's/^/    /' "$SP_TMP/bad.err"
	fi
}

bad_config "unknown key" "4: unknown key 'bogus'" <<'C'
# agent settings
log-keep = 3

bogus = 1
C
bad_config "bad number" "2: --log-keep: 'lots' is not a number from 0 to 1000" <<'C'
log-max-size = 10M
log-keep = lots
C
bad_config "no '='" "3: expected 'key = value', got 'metrics 127.0.0.1:9477'" <<'C'
# one
# two
metrics 127.0.0.1:9477
C
bad_config "bad listen address" "1: --metrics: '127.0.0.1:99999' is not ADDR:PORT" <<'C'
metrics = 127.0.0.1:99999
C
bad_config "bad boolean" "2: 'log-activity' takes true or false" <<'C'
log-keep = 3
log-activity = perhaps
C
bad_config "bad action name" "1: --log-actions: 'tcp-connect,tcp-nonsense' is not a list" <<'C'
log-actions = tcp-connect,tcp-nonsense
C
bad_config "bad duration" "5: --sockdiag-interval: '5 parsecs' is not off or a duration" <<'C'
log-keep = 1
log-keep = 2
log-keep = 3
log-keep = 4
sockdiag-interval = 5 parsecs
C
bad_config "no nesting" "1: unknown key 'config'" <<'C'
config = /etc/other.conf
C
"$SOCKPULSE" agent --config "$SP_TMP/missing.conf" --metrics off --log off >/dev/null 2>"$SP_TMP/missing.err"
check_eq "a missing file: exit status 2" "$?" 2
check "a missing file is named" grep -q "config $SP_TMP/missing.conf: No such file or directory" "$SP_TMP/missing.err"

# a good file; the command line's --log wins over the file's
ns_new c
cat >"$SP_TMP/good.conf" <<C
# sockpulse agent test configuration
log = $SP_TMP/from-file/events.jsonl
log-actions = tcp-connect
sockdiag-interval = off
  metrics = 127.0.0.1:0   # ends in a comment? no: values run to the end of the line
C
check "a value with trailing text is refused as a listen address" \
	bash -c "! '$SOCKPULSE' agent --config '$SP_TMP/good.conf' --duration 1 2>/dev/null"
sed -i 's/   # ends.*$//' "$SP_TMP/good.conf"
host_agent_start g c --config "$SP_TMP/good.conf" || sp_finish
check "the file's metrics address is used (port 0: any)" \
	grep -Eq "metrics http://127.0.0.1:[1-9][0-9]*/metrics" "$SP_TMP/g.err"
check "the file's sockdiag-interval = off is used" grep -q "sock_diag off" "$SP_TMP/g.err"
check "the command line's --log wins" grep -q "log $SP_TMP/g/events.jsonl" "$SP_TMP/g.err"
bg_run "$SP_TMP/srv.out" nsx c "$SP_CONN" serve 127.0.0.1 6201 --count 1 --deadline 20
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "server did not listen"
nsx c "$SP_CONN" connect 127.0.0.1 6201 --deadline 20 >"$SP_TMP/cli.out" 2>&1
check "the connect is counted" wait_metric g 'sockpulse_tcp_connects_total{outcome="success"}' -eq 1 10
host_agent_stop g TERM
LOG=$(host_agent_log g)
check "nothing was written where the file said" test ! -e "$SP_TMP/from-file"
check_eq "the file's log-actions applies: only tcp-connect lines" \
	"$(count "$LOG" '.event.action | IN("tcp-connect", "log-start") | not'),$(count "$LOG" '.event.action == "tcp-connect"')" "0,1"
sp_finish
