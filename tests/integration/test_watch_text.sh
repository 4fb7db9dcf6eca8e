#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `sockpulse watch` in text (the default) beside `sockpulse watch --json` on the same namespace:
# the text shows the same events, one aligned line each, in the README's format. A connection
# with a payload (client in c, server in s, the client closes first) and a refused connect:
#   - the header names the columns, and every line's EVENT column starts under its header;
#   - the text has as many state lines, connect lines and reset lines as the JSON has
#     tcp-state-change, tcp-connect and tcp-reset lines, and the same old -> new pairs;
#   - the lines the README shows: connect ok with its latency, syn_sent -> established with the
#     time in syn_sent, the active closer's fin_wait2 -> close marked time_wait, and the refused
#     connect as FAILED refused ECONNREFUSED, its source the address the SYN left from (a
#     blocking connect() that failed has its source address cleared by then); the owner;
#   - times never go backwards.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

ns_new c
ns_new s
link_pair c s 1

agent_start j c
"$SOCKPULSE" watch --netns "$(ns_path c)" >"$SP_TMP/t.txt" 2>"$SP_TMP/t.err" &
SP_AGENT_PID[t]=$!
wait_ready t || sp_finish

bg_run "$SP_TMP/srv.out" nsx s "$SP_CONN" serve 10.1.0.2 5201 --hold 5 --deadline 20
SRV=$BG_PID
wait_for "$SP_TMP/srv.out" '^listening' 10 || fail "the server did not listen"
nsx c "$SP_CONN" connect 10.1.0.2 5201 --send 100 --hold 0.3 --deadline 20 >"$SP_TMP/cli.out"
check_eq "the client connected" "$(kv "$SP_TMP/cli.out" connect result)" ok
wait_pid "$SRV" 20
check_eq "the server saw the client's bytes then EOF" \
	"$(kv "$SP_TMP/srv.out" end reason),$(kv "$SP_TMP/srv.out" end bytes_received)" "eof,100"
nsx c "$SP_CONN" connect 10.1.0.2 5202 --deadline 20 >"$SP_TMP/refused.out"
check_eq "the refused connect failed" "$(kv "$SP_TMP/refused.out" connect result)" ECONNREFUSED
sleep 1.5 # a tick, and the client's FIN_WAIT2 -> CLOSE of a short TIME_WAIT hand-over

agent_stop j
signal_stop t INT

JSON=$(agent_json j)
TXT=$SP_TMP/t.txt
log "text output:"
sed 's/^/    /' "$TXT" | head -n 40

# The header, and the EVENT column of every line under it.
check "the first line is the header" \
	grep -qE '^TIME +PID +COMM +SOURCE +DESTINATION +EVENT$' <(head -n1 "$TXT")
col=$(head -n1 "$TXT" | awk '{ print index($0, "EVENT") }')
bad=$(tail -n +2 "$TXT" | awk -v c="$col" 'substr($0, c - 1, 1) != " " || substr($0, c, 1) == " "' |
	head -n3)
check "every line's EVENT column starts at column $col (${bad:-all aligned})" [ -z "$bad" ]

# The same events, kind by kind.
n_json() { jq -c "select(.event.action == \"$1\")" "$JSON" | wc -l; }
n_text() { awk -v c="$col" -v k="$1" 'NR > 1 && substr($0, c) ~ ("^" k " ")' "$TXT" | wc -l; }
for pair in tcp-state-change:state tcp-connect:connect tcp-reset:reset; do
	j=$(n_json "${pair%%:*}")
	t=$(n_text "${pair#*:}")
	check "as many '${pair#*:}' text lines as ${pair%%:*} JSON lines ($t, $j)" [ "$t" -eq "$j" ]
done
check "there were state changes to compare" [ "$(n_json tcp-state-change)" -ge 6 ]
jpairs=$(jq -r 'select(.event.action == "tcp-state-change") | "\(.sockpulse.old_state) -> \(.sockpulse.new_state)"' \
	"$JSON" | sort)
# a line may end in "(duration)" and "time_wait": take "old -> new" wherever it stands
tpairs=$(awk -v c="$col" 'NR > 1 && substr($0, c) ~ /^state / {
	if (match($0, /[a-z_0-9]+ -> [a-z_0-9]+/)) print substr($0, RSTART, RLENGTH) }' "$TXT" | sort)
check "the same old -> new pairs in both" [ "$jpairs" = "$tpairs" ]

# The lines the README shows.
T='^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} +[0-9]+ +sp_conn +'
DUR='[0-9.]+(ns|us|ms|s)'
check "connect ok with its latency" \
	grep -qE "${T}10\.1\.0\.1:[0-9]+ +10\.1\.0\.2:5201 +connect +ok $DUR$" "$TXT"
check "syn_sent -> established with the time in syn_sent" \
	grep -qE "${T}10\.1\.0\.1:[0-9]+ +10\.1\.0\.2:5201 +state +syn_sent -> established \($DUR\)$" "$TXT"
check "close -> syn_sent before the port is known (source address alone)" \
	grep -qE "${T}10\.1\.0\.1 +10\.1\.0\.2:5201 +state +close -> syn_sent$" "$TXT"
check "the active closer's fin_wait2 -> close is marked time_wait" \
	grep -qE "${T}10\.1\.0\.1:[0-9]+ +10\.1\.0\.2:5201 +state +fin_wait2 -> close \($DUR\) time_wait$" "$TXT"
check "the refused connect: FAILED refused ECONNREFUSED with its latency" \
	grep -qE "${T}10\.1\.0\.1:[0-9]+ +10\.1\.0\.2:5202 +connect +FAILED refused ECONNREFUSED $DUR$" "$TXT"

check "the refused connect's JSON source is the client's address" \
	jq -e -s 'any(.[]; .event.action == "tcp-connect" and .destination.port == 5202
		and .source.ip == "10.1.0.1")' "$JSON"

times=$(tail -n +2 "$TXT" | awk '{ print $1 }')
check "times never go backwards" [ "$times" = "$(sort <<<"$times")" ]
check "no warning on stderr" [ -z "$(grep -v -e '^sockpulse: ready:' -e '^sockpulse: summary' \
	-e '^sockpulse: connect hook' "$SP_TMP/t.err")" ]

sp_finish
