#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Files an attacker or a careless operator can put at the log or config path are refused as
# root, each with one line on stderr and exit status 1 (log) or 2 (config), before anything is
# loaded and before anything could block: a symbolic link (to a root-only file, which stays
# untouched), a FIFO nobody reads, a directory, a device, another user's file, a 0666 file, and
# a directory writable by everyone. A config with a NUL byte is said to have one, and a binary
# config's control bytes reach stderr escaped. A safe, pre-existing file is used as it is.
. "$(dirname "$0")/lib.sh"
sp_require_bpf

NOBODY=65534
D=$SP_TMP/logs
mkdir -p "$D"
chmod 0755 "$SP_TMP" "$D" # nobody plants a link below

# refused KIND DESC PATH WANT-RC WANT-REASON: runs the agent with PATH as --log or --config
refused() {
	local kind=$1 desc=$2 path=$3 rc_want=$4 why=$5 args rc
	if [ "$kind" = log ]; then
		args=(--log "$path")
	else
		args=(--config "$path" --log off)
	fi
	timeout 10 "$SOCKPULSE" agent "${args[@]}" --metrics off --duration 1 \
		>"$SP_TMP/r.out" 2>"$SP_TMP/r.err"
	rc=$?
	check_eq "$kind $desc: exit status" "$rc" "$rc_want"
	SP_CHECKS=$((SP_CHECKS + 1))
	if [ "$(wc -l <"$SP_TMP/r.err")" -eq 1 ] && grep -qF -- "$path: refused: $why" "$SP_TMP/r.err"; then
		pass_check "$kind $desc: one line: $(cat "$SP_TMP/r.err")"
	else
		fail "$kind $desc: stderr is not one line naming '$path: refused: $why':"
		sed 's/^/    /' "$SP_TMP/r.err"
	fi
}

# A directory owned by nobody, where nobody plants a link to a root-only file.
mkdir "$D/nobody" && chown $NOBODY:$NOBODY "$D/nobody"
printf 'secret\n' >"$SP_TMP/root-only" && chmod 0600 "$SP_TMP/root-only"
setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups ln -s "$SP_TMP/root-only" "$D/nobody/ev.jsonl"
refused log "symbolic link" "$D/nobody/ev.jsonl" 1 "is a symbolic link"
check_eq "the link's root-only target is untouched" "$(cat "$SP_TMP/root-only")" secret

mkfifo "$D/fifo.jsonl"
refused log "FIFO" "$D/fifo.jsonl" 1 "is a FIFO, not a regular file"
mkdir "$D/dir.jsonl"
refused log "directory" "$D/dir.jsonl" 1 "is a directory, not a regular file"
refused log "device" /dev/null 1 "is a character device, not a regular file"
install -m 0640 -o $NOBODY -g $NOBODY /dev/null "$D/foreign.jsonl"
refused log "foreign owner" "$D/foreign.jsonl" 1 "is owned by uid $NOBODY, not by root"
install -m 0666 /dev/null "$D/wide.jsonl"
refused log "0666 file" "$D/wide.jsonl" 1 "is writable by others (mode 0666)"
mkdir "$D/public" && chmod 0777 "$D/public"
refused log "in a world-writable directory" "$D/public/ev.jsonl" 1 \
	"its directory is writable by others and not sticky (mode 0777)"
check "nothing was created in the world-writable directory" test -z "$(ls -A "$D/public")"

printf 'log-keep = 3\n' >"$SP_TMP/wide.conf" && chmod 0666 "$SP_TMP/wide.conf"
refused config "0666 file" "$SP_TMP/wide.conf" 2 "is writable by others (mode 0666)"
printf 'log-keep = 3\n' >"$SP_TMP/foreign.conf" && chown $NOBODY "$SP_TMP/foreign.conf"
refused config "foreign owner" "$SP_TMP/foreign.conf" 2 "is owned by uid $NOBODY, not by root"
ln -s "$SP_TMP/foreign.conf" "$SP_TMP/link.conf"
refused config "symbolic link" "$SP_TMP/link.conf" 2 "is a symbolic link"
mkfifo "$SP_TMP/fifo.conf"
refused config "FIFO" "$SP_TMP/fifo.conf" 2 "is a FIFO, not a regular file"

# Binary content: a NUL byte is named as such, and control bytes never reach stderr raw.
printf 'log-keep = 3\nlog\0-keep = 4\n' >"$SP_TMP/nul.conf"
timeout 10 "$SOCKPULSE" agent --config "$SP_TMP/nul.conf" --log off --metrics off \
	>/dev/null 2>"$SP_TMP/nul.err"
check_eq "a config with a NUL byte: exit status" "$?" 2
check_eq "... one line, naming the NUL byte on line 2" \
	"$(grep -cF "nul.conf:2: NUL byte in line" "$SP_TMP/nul.err"),$(wc -l <"$SP_TMP/nul.err")" "1,1"
printf '\x1b[2J\x07=\x01\x02\x7f\n' >"$SP_TMP/bin.conf"
timeout 10 "$SOCKPULSE" agent --config "$SP_TMP/bin.conf" --log off --metrics off \
	>/dev/null 2>"$SP_TMP/bin.err"
check_eq "a binary config: exit status" "$?" 2
check_eq "... one line" "$(wc -l <"$SP_TMP/bin.err")" 1
check "... with its control bytes escaped (\\x1b)" grep -qF '\x1b[2J\x07' "$SP_TMP/bin.err"
check "... and none raw" bash -c "! LC_ALL=C grep -q '[[:cntrl:]]' '$SP_TMP/bin.err'"

# A safe file that already exists is appended to.
printf '{"old":1}\n' >"$D/ok.jsonl" && chmod 0640 "$D/ok.jsonl"
ns_new c
host_agent_start ok c --log "$D/ok.jsonl" || sp_finish
host_agent_stop ok
check_eq "a safe existing log keeps its first line" "$(head -n1 "$D/ok.jsonl")" '{"old":1}'
sp_finish
