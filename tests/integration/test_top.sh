#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `sockpulse top` in a real terminal (tmux, fixed sizes, LANG=C.UTF-8) watching real traffic in
# namespaces made here (top filtered with -p 80,81): a live connection and its peer row, the
# conns: header counting only the filtered ports, a refused destination and its
# failures, sort and filter keys, the details view, resizing to 80x24 and back, q exits 0 and
# gives the terminal back as it was; SIGTERM does too (with --no-unicode). Without a terminal,
# `top` says to use watch (status 2) and a bare `sockpulse` streams like watch.
. "$(dirname "$0")/lib.sh"

sp_require_bpf

ns_new a
ns_new b
link_pair a b 1

S=top # the tmux session
tmux_start "$S" 120 40 || sp_finish

# Runs top inside the session's shell through a wrapper that records the terminal settings
# before and after, top's pid and its exit status: run_top TAG [top args...]
run_top() {
	local tag=$1
	shift
	rm -f "$SP_TMP/$tag".*
	cat >"$SP_TMP/$tag.sh" <<EOF
stty -a >"$SP_TMP/$tag.stty0"
sh -c 'echo \$\$ >"\$0"; exec "\$@"' "$SP_TMP/$tag.pid" "$SOCKPULSE" top --netns "$(ns_path a)" $*
echo \$? >"$SP_TMP/$tag.rc.tmp"
stty -a >"$SP_TMP/$tag.stty1"
mv "$SP_TMP/$tag.rc.tmp" "$SP_TMP/$tag.rc"
echo "top-exited-$tag"
EOF
	tmux_keys "$S" "clear; sh $SP_TMP/$tag.sh 2>$SP_TMP/$tag.err" Enter
	if ! wait_screen "$S" '^sockpulse top ' 30; then
		fail "$tag: the dashboard did not appear within 30 s"
		show_screen
		cat "$SP_TMP/$tag.err" 2>/dev/null | sed 's/^/    err: /'
		return 1
	fi
	TOP_PID=$(cat "$SP_TMP/$tag.pid")
	SP_BG_PIDS+=("$TOP_PID")
}

# wait_rc TAG SECONDS: the exit status the wrapper recorded, or "none".
wait_rc() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ -f "$SP_TMP/$1.rc" ] && { cat "$SP_TMP/$1.rc"; return; }
		sleep 0.1
	done
	echo none
}

# The peers of the table in screen order (first field of rows starting with 10.1.0.2: in the
# first column; the spike panel's rows are indented).
peer_order() {
	awk '/^10\.1\.0\.2:/ { print $1 }' "$SP_TMP/screen.txt" | paste -sd' ' -
}
peer_count() { peer_order | wc -w; }

# settled EXPECTED SECONDS FUNC: FUNC's output once it reads EXPECTED, re-capturing the screen up
# to SECONDS (on a slow machine a capture can catch a redraw half done: the new header over the
# old rows); else its last output.
settled() {
	local want=$1 secs=$2 fn=$3 i got
	for ((i = 0; i < secs * 10; i++)); do
		got=$($fn)
		[ "$got" = "$want" ] && break
		sleep 0.1
		tmux_screen "$S" >"$SP_TMP/screen.txt" 2>/dev/null
	done
	echo "$got"
}

# row_field PEER N: field N of the table row of PEER (1 peer, 2 conns, 3 transport, 4 payload,
# 5 last, 6 left, 7 fail/m, 8 process).
row_field() {
	awk -v p="$1" -v n="$2" '$1 == p { print $n; exit }' "$SP_TMP/screen.txt"
}

# screen_check DESC REGEX SECONDS: a check that waits for the screen to match.
screen_check() {
	SP_CHECKS=$((SP_CHECKS + 1))
	if wait_screen "$S" "$2" "$3"; then
		pass_check "$1"
		return 0
	fi
	fail "$1: the screen never matched /$2/ within $3 s"
	show_screen
	return 1
}

# -p 80,81: the table and the conns: header both count only those ports.
run_top main --audit-interval 1s -p 80,81 || sp_finish

# A live connection with inbound data and keepalive on: its peer row, alive.
bg_run "$SP_TMP/server.out" nsx b "$SP_CONN" serve 10.1.0.2 80 --count 1 --chunks 120,16,500 \
	--deadline 90
SERVER=$BG_PID
sleep 0.3
bg_run "$SP_TMP/client.out" nsx a "$SP_CONN" connect 10.1.0.2 80 --keepalive 30,5,3 --hold 80 \
	--deadline 90
screen_check "the live connection's peer row appears, alive" \
	'^10\.1\.0\.2:80 +1 alive +alive ' 15
check_eq "its owning process is the client" "$(row_field 10.1.0.2:80 8 | cut -d/ -f1)" sp_conn

# A connection on port 82, outside -p: neither a row nor a count in the header.
bg_run "$SP_TMP/s82.out" nsx b "$SP_CONN" serve 10.1.0.2 82 --count 1 --hold 8 --deadline 20
wait_for "$SP_TMP/s82.out" '^listening' 10 || fail "the port 82 server did not listen"
bg_run "$SP_TMP/c82.out" nsx a "$SP_CONN" connect 10.1.0.2 82 --hold 6 --deadline 20
wait_for "$SP_TMP/c82.out" '^connect .*result=ok' 10 || fail "the port 82 client did not connect"
sleep 2.5 # two sock_diag dumps (1 s refresh)
screen_check "the conns: header counts what -p lets through (1 established, not 2)" \
	'^conns: established 1 ' 3
check "no row for port 82" test -z "$(awk '/^10\.1\.0\.2:82 / { print }' "$SP_TMP/screen.txt")"

# A refused destination: six failed connects show as failures per minute.
for i in 1 2 3 4 5 6; do
	nsx a "$SP_CONN" connect 10.1.0.2 81 --deadline 5 >/dev/null 2>&1
done
screen_check "the refused destination's row shows 6 failures a minute" \
	'^10\.1\.0\.2:81 +0 +- +- +- +- +6 +sp_conn' 10
screen_check "the events pane shows the refusal" 'connect failed: refused \(ECONNREFUSED\)' 5
screen_check "the header counts the failures" 'connect failures 6/min of [0-9]+' 5

# Sorting: by lease state (default, worst first: the alive peer first), then 4 x s to FAIL/M.
check_eq "default order: by transport state" "$(peer_order)" "10.1.0.2:80 10.1.0.2:81"
tmux_keys "$S" s s s s
screen_check "s moves the sort to FAIL/M" 'FAIL/M▼' 5
check_eq "sorted by failures: the refused destination first" "$(peer_order)" \
	"10.1.0.2:81 10.1.0.2:80"
tmux_keys "$S" r
screen_check "r reverses the sort" 'FAIL/M▲' 5
check_eq "reversed: the failing destination last" "$(peer_order)" "10.1.0.2:80 10.1.0.2:81"
tmux_keys "$S" '<'
screen_check "< moves the sort one column left" 'LEFT▲' 5
tmux_keys "$S" r '>'

# Filtering: by port, by a process name nobody has, then Esc clears it.
tmux_keys "$S" / ':' 8 1 Enter
screen_check "the filter shows in the header" 'filter: :81' 5
check_eq "filter :81 keeps only that peer" "$(peer_order)" "10.1.0.2:81"
tmux_keys "$S" / n o s u c h Enter
screen_check "a filter matching nothing says so" 'no peer matches the filter' 5
tmux_keys "$S" Escape
screen_check "Esc clears the filter" '^10\.1\.0\.2:81 ' 5
check_eq "both peers are back" "$(peer_order | wc -w)" 2

# Details of the live peer: its connection, owner, state, keepalive; Esc goes back.
tmux_keys "$S" / ':' 8 0 Enter
wait_screen "$S" 'filter: :80' 5
tmux_keys "$S" Enter
screen_check "Enter opens the peer's connections" \
	'^PEER 10\.1\.0\.2:80: 1 connection \(Esc back\)' 5
screen_check "the connection: local end, established, owner, keepalive 30/5/3, a dead peer seen in 45 s" \
	'^10\.1\.0\.1:[0-9]+ +established +alive +alive +30s/5s/3 \(45s\).* sp_conn/[0-9]+' 5
tmux_keys "$S" Escape
screen_check "Esc closes the details" '^PEER +CONNS +TRANSPORT' 5
SP_CHECKS=$((SP_CHECKS + 1))
if grep -q 'Esc back)' "$SP_TMP/screen.txt"; then
	fail "the details title is still shown after Esc"
	show_screen
else
	pass_check "the details view is gone"
fi
tmux_keys "$S" Escape

# Help opens and any key closes it.
tmux_keys "$S" '?'
screen_check "? shows the help" 'sockpulse top: keys' 5
tmux_keys "$S" x
screen_check "a key closes the help" '^PEER +CONNS' 5

# Resize to 80x24 and back: a whole screen each time, header first and footer last.
whole_screen() { # ROWS COLS
	local rows=$1 cols=$2 n long
	n=$(wc -l <"$SP_TMP/screen.txt")
	long=$(LC_ALL=C.UTF-8 bash -c 'n=0; while IFS= read -r l; do
		[ ${#l} -le "$1" ] || n=$((n + 1)); done; echo $n' sh "$cols" <"$SP_TMP/screen.txt")
	[ "$n" -eq "$rows" ] && [ "$long" -eq 0 ] &&
		head -n1 "$SP_TMP/screen.txt" | grep -q '^sockpulse top ' &&
		tail -n1 "$SP_TMP/screen.txt" | grep -q '^q quit  ? help' &&
		grep -q '^PEER  *CONNS  *TRANSPORT' "$SP_TMP/screen.txt" &&
		grep -q '^10\.1\.0\.2:80  *1 alive' "$SP_TMP/screen.txt" &&
		grep -q '^EVENTS latest first' "$SP_TMP/screen.txt"
}
for size in 80x24 120x40; do
	"${SP_TMUX[@]}" resize-window -t "$S" -x "${size%x*}" -y "${size#*x}"
	sleep 0.5
	SP_CHECKS=$((SP_CHECKS + 1))
	ok=0
	for ((i = 0; i < 30; i++)); do
		tmux_screen "$S" >"$SP_TMP/screen.txt"
		if whole_screen "${size#*x}" "${size%x*}"; then
			ok=1
			break
		fi
		sleep 0.1
	done
	if [ $ok = 1 ]; then
		pass_check "resized to $size: header, table, events and footer on a whole screen"
	else
		fail "resized to $size: not a whole screen"
		show_screen
	fi
done

# q: exit 0, the shell is back, the terminal settings are as before.
tmux_keys "$S" q
check_eq "q exits with status 0" "$(wait_rc main 10)" 0
screen_check "the shell is back after q" '^top-exited-main$' 5
SP_CHECKS=$((SP_CHECKS + 1))
if grep -Eq '^sockpulse top |^q quit  \? help' "$SP_TMP/screen.txt"; then
	fail "the dashboard is still on the screen after q"
	show_screen
else
	pass_check "the dashboard is gone from the screen"
fi
check "terminal settings restored after q (stty -a before = after)" \
	cmp -s "$SP_TMP/main.stty0" "$SP_TMP/main.stty1"
check "a summary went to stderr after the screen was given back" \
	grep -q 'summary: events' "$SP_TMP/main.err"

# SIGTERM, with --no-unicode: ASCII marks, then a clean exit and a restored terminal.
run_top ascii --no-unicode || sp_finish
screen_check "--no-unicode: ASCII sort mark" 'TRANSPORTv' 10
SP_CHECKS=$((SP_CHECKS + 1))
if grep -q '[▁▂▃▄▅▆▇█▲▼↑↓→…]' "$SP_TMP/screen.txt"; then
	fail "--no-unicode: Unicode characters on the screen"
	show_screen
else
	pass_check "--no-unicode: no Unicode block, arrow or ellipsis on the screen"
fi
kill -TERM "$TOP_PID"
check_eq "SIGTERM exits with status 0" "$(wait_rc ascii 10)" 0
screen_check "the shell is back after SIGTERM" '^top-exited-ascii$' 5
check "terminal settings restored after SIGTERM" \
	cmp -s "$SP_TMP/ascii.stty0" "$SP_TMP/ascii.stty1"

# Without a terminal: top refuses (2) and points to watch; a bare sockpulse is watch.
timeout 20 "$SOCKPULSE" top --netns "$(ns_path a)" </dev/null >"$SP_TMP/notty.out" \
	2>"$SP_TMP/notty.err"
check_eq "top without a terminal exits 2" "$?" 2
check "and says to use sockpulse watch" grep -q 'sockpulse watch' "$SP_TMP/notty.err"
timeout 30 "$SOCKPULSE" --netns "$(ns_path a)" --duration 2 </dev/null >"$SP_TMP/bare.out" \
	2>"$SP_TMP/bare.err"
check_eq "a bare sockpulse without a terminal runs watch and exits 0" "$?" 0
check "its output is watch's text header" grep -q '^TIME ' "$SP_TMP/bare.out"

kill "$SERVER" 2>/dev/null
sp_finish
