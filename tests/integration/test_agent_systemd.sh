#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Running under systemd: tools/sockpulse.service passes `systemd-analyze verify` once installed
# (make install's substitution, pointed at the built binary), and the agent speaks the notify
# protocol by hand: READY=1 (with STATUS) once, first, WATCHDOG=1 at half of
# WATCHDOG_USEC, STOPPING=1 on SIGTERM; SIGHUP (ExecReload) reopens the log; exit status 0.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v systemd-analyze >/dev/null || skip "systemd-analyze not installed (Debian package systemd)"
command -v python3 >/dev/null || skip "python3 not installed"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
UNIT=$SP_TMP/unit/sockpulse.service
mkdir -p "$SP_TMP/unit"
sed "s|@SBINDIR@/sockpulse|$SOCKPULSE|g" "$ROOT/tools/sockpulse.service" >"$UNIT"
SP_CHECKS=$((SP_CHECKS + 1))
if systemd-analyze verify "$UNIT" >"$SP_TMP/verify.out" 2>&1; then
	pass_check "systemd-analyze verify accepts the unit"
else
	fail "systemd-analyze verify:"
	sed 's/^/    /' "$SP_TMP/verify.out"
fi
for want in '^Type=notify$' '^User=sockpulse$' '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' \
	'^LogsDirectory=sockpulse$' '^AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_NET_ADMIN$' \
	'^CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN$' '^ExecReload=.*kill -HUP \$MAINPID$'; do
	check "unit has $want" grep -Eq "$want" "$UNIT"
done
check "sysusers entry for the user" grep -Eq '^u sockpulse ' "$ROOT/tools/sockpulse.sysusers"

# a stand-in for systemd's notify socket: every datagram, one per line ("|" for newlines)
cat >"$SP_TMP/notify.py" <<'PY'
import os, socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.5)
end = time.time() + 40
with open(out, "w", buffering=1) as f:
    while time.time() < end:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            continue
        f.write(msg.replace("\n", "|") + "\n")
        if "STOPPING=1" in msg:
            break
PY
NOTIFY=$SP_TMP/notify.sock
bg_run "$SP_TMP/notify.out" python3 "$SP_TMP/notify.py" "$NOTIFY" "$SP_TMP/notify.txt"
NPID=$BG_PID
for ((i = 0; i < 100; i++)); do [ -S "$NOTIFY" ] && break; sleep 0.05; done

ns_new c
export NOTIFY_SOCKET=$NOTIFY WATCHDOG_USEC=400000
host_agent_start s c || sp_finish
unset NOTIFY_SOCKET WATCHDOG_USEC
check "READY=1 arrives" wait_for "$SP_TMP/notify.txt" '^READY=1\|STATUS=watching' 10
sleep 1.5
mv "$(host_agent_log s)" "$SP_TMP/s/rotated"
kill -HUP "${SP_AGENT_PID[s]}"
check "SIGHUP reopens the log" wait_for "$SP_TMP/s.err" "SIGHUP: reopened" 5
host_agent_stop s TERM
wait_pid "$NPID" 10
N=$SP_TMP/notify.txt
check_eq "READY=1 exactly once, first" "$(grep -n 'READY=1' "$N" | cut -d: -f1 | tr '\n' ' ')" "1 "
check "watchdog pings at half the interval (at least 4 in 2 s)" test "$(grep -c '^WATCHDOG=1$' "$N")" -ge 4
check_eq "STOPPING=1 last" "$(tail -n1 "$N")" "STOPPING=1"
check "the live log exists again after SIGHUP" test -e "$(host_agent_log s)"
sp_finish
