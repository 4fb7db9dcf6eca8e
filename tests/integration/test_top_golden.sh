#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `sockpulse top --replay` of a fixed log (tests/integration/data/top.jsonl) in tmux at 80x24,
# 120x40 and 200x60, plus 60x20 and 50x20, the details of a peer at 80x24 and the ASCII screen
# (--no-unicode): each capture must equal its golden file in tests/integration/data/ byte for
# byte. The replay's clock is the log's, TZ is UTC, so nothing on the screen depends on when or
# where the test runs. SP_GOLDEN_UPDATE=1 rewrites the golden files from this build instead.
#
# The log (hand-made, 14 s, lease TTL 10 s): three connections to 10.1.0.2:5432, one silent
# from 1 s (its leases expire: "1/3 expired"); two loopback peers 127.0.0.1:6411 and :6412,
# both ends on the host; an IPv6 connection that ends at 6 s; 52 refused connects to
# 10.1.0.9:8080, 4 a second from 1 s to 14 s: a spike whose 10 s window holds 40 of them. The
# owners' cgroups name a unit (api), a docker container (server) and a pod's container (worker):
# the SERVICE column, and the peers grouped by service (key b) at 120x40.
. "$(dirname "$0")/lib.sh"

DATA=$(cd "$(dirname "$0")" && pwd)/data
LOG=$DATA/top.jsonl

# golden NAME COLS ROWS [KEYS...] -- [top args...]: the screen after the dashboard is up (and
# after KEYS), against $DATA/top-NAME.txt.
golden() {
	local name=$1 cols=$2 rows=$3 keys=() args=() want=$DATA/top-$1.txt
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		keys+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	args=("$@")
	S=$name # a session of its own, of this size, on the test's tmux server
	"${SP_TMUX[@]}" new-session -d -s "$S" -x "$cols" -y "$rows" \
		env LANG=C.UTF-8 LC_ALL=C.UTF-8 PS1='sp-shell$ ' bash --norc --noprofile -i || {
		fail "$name: tmux new-session"
		return 1
	}
	tmux_keys "$S" "clear; TZ=UTC $SOCKPULSE top --lease-ttl 10s ${args[*]} --replay $LOG; " \
		"echo top-exited-\$?" Enter
	if ! wait_screen "$S" '^q quit|^Esc back' 10; then
		fail "$name: the dashboard did not appear"
		show_screen
		return 1
	fi
	if [ ${#keys[@]} -gt 0 ]; then
		tmux_keys "$S" "${keys[@]}"
		wait_screen "$S" '^Esc back' 5 || true
	fi
	sleep 0.3 # one more draw would not change it: the clock is the log's
	tmux_screen "$S" >"$SP_TMP/$name.txt"
	"${SP_TMUX[@]}" capture-pane -e -p -t "$S" >"$SP_TMP/$name.color"
	tmux_keys "$S" q
	SP_CHECKS=$((SP_CHECKS + 1))
	if ! wait_screen "$S" '^top-exited-0' 5; then
		fail "$name: q did not end top with status 0"
		show_screen
	else
		pass_check "$name: q ends top with status 0"
	fi
	if [ "${SP_GOLDEN_UPDATE:-0}" = 1 ]; then
		cp "$SP_TMP/$name.txt" "$want"
		log "updated $want"
	fi
	SP_CHECKS=$((SP_CHECKS + 1))
	if cmp -s "$SP_TMP/$name.txt" "$want"; then
		pass_check "$name: the screen equals $(basename "$want")"
	else
		fail "$name: the screen differs from $(basename "$want")"
		diff -u "$want" "$SP_TMP/$name.txt" | sed 's/^/    /' | head -40
	fi
	"${SP_TMUX[@]}" kill-session -t "$S" 2>/dev/null
}

tmux_start base 80 24 || sp_finish

golden 80x24 80 24
golden 120x40 120 40
golden 200x60 200 60
golden 60x20 60 20
golden 50x20 50 20
golden details-80x24 80 24 Enter
golden ascii-80x24 80 24 -- --no-unicode
golden service-120x40 120 40 b

# What the goldens hold, said once more in words, so a reviewer updating them sees the point.
check "80x24: one of three connections expired, said so" \
	grep -q '^10\.1\.0\.2:5432 .* 1/3 expired' "$DATA/top-80x24.txt"
check "80x24: the spike panel counts the window it names" \
	grep -q '  40 failures in the last 10s' "$DATA/top-80x24.txt"
check "50x20: PEER is there and the two loopback peers differ" \
	grep -q '^127\.0\.0\.1:6412 ' "$DATA/top-50x20.txt"
check "80x24: the events pane grows into unused table rows" \
	[ "$(grep -c '→10\.1\.0\.9:8080' "$DATA/top-80x24.txt")" -ge 10 ]
check "details at 80x24 show both lease states and the keepalive column" \
	grep -Eq '^LOCAL +STATE +TRANSPORT +PAYLOAD +KEEPALIVE' "$DATA/top-details-80x24.txt"
# Colours (not in the goldens): the partly expired peer is a warning (yellow), not red; an
# all-alive one green.
ESC=$(printf '\033')
check "80x24: '1/3 expired' is drawn yellow, not red" \
	grep -q "${ESC}\[33m1/3 expired" "$SP_TMP/80x24.color"
check "80x24: an alive peer is drawn green" grep -q "${ESC}\[32malive" "$SP_TMP/80x24.color"
sp_finish
