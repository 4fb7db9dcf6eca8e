#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# No local user can starve /metrics. 64 slow clients from 127.0.0.2-5 (16 each, the per-address
# limit), each dribbling one header line a second, hold every slot for 10 s: scrapes during that
# time still answer, because a request has a deadline for the whole of it and a new connection
# takes the slot of the one that has waited longest. 100 pipelined GETs on one connection are
# answered at once rather than one per tick of the loop (the bound here only guards against a
# hang; the time is printed). /metrics%00 is not /metrics. [::] accepts IPv4 too; a non-loopback
# address draws one warning line.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"
command -v python3 >/dev/null || skip "python3 not installed"

ns_new c
host_agent_start h c --log off || sp_finish
URL=${SP_METRICS_URL[h]}
PORT=${URL##*:}
PORT=${PORT%/metrics}

cat >"$SP_TMP/slow.py" <<'PY'
import socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + secs
conns = []
for a in range(2, 6):
    for _ in range(16):
        try:
            s = socket.create_connection(("127.0.0.1", port), 2, (f"127.0.0.{a}", 0))
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            conns.append(s)
        except OSError:
            pass
print("connected", len(conns), flush=True)
n = again = 0
while time.time() < end:
    for s in list(conns):
        try:
            s.sendall(b"X-Slow-%d: 1\r\n" % n)
        except OSError:
            conns.remove(s)  # closed by the server: come back, as an attacker would
            again += 1
            try:
                s = socket.create_connection(("127.0.0.1", port), 2, (s.getsockname()[0], 0))
                s.sendall(b"GET /metrics HTTP/1.1\r\n")
                conns.append(s)
            except OSError:
                pass
    n += 1
    time.sleep(1)
print("done", n, "reconnects", again, flush=True)
PY
bg_run "$SP_TMP/slow.out" timeout 20 python3 "$SP_TMP/slow.py" "$PORT" 10
SLOW=$BG_PID
wait_for "$SP_TMP/slow.out" '^connected 64' 10 || fail "the slow clients did not all connect"
ok=0
for i in 1 2 3; do # all within the slow clients' 10 s, even if each took its 2 s
	sleep 1
	curl -sf --max-time 2 -o /dev/null "$URL" && ok=$((ok + 1))
done
check_eq "every scrape answered while 64 slow clients held the slots" "$ok" 3
wait_pid "$SLOW" 20
AGAIN=$(sed -n 's/^done .* reconnects //p' "$SP_TMP/slow.out")
check "each slow client was cut off at the deadline (reconnects: ${AGAIN:-none})" \
	test "${AGAIN:-0}" -ge 64

cat >"$SP_TMP/pipe.py" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), 5)
s.settimeout(10)
t0 = time.time()
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * n)
buf, got = b"", 0
while got < n:
    i = buf.find(b"\r\n\r\n")
    if i >= 0:
        head = buf[:i].decode()
        cl = [int(l.split(":")[1]) for l in head.split("\r\n") if l.lower().startswith("content-length")]
        if cl and len(buf) >= i + 4 + cl[0]:
            got += head.startswith("HTTP/1.1 200")
            buf = buf[i + 4 + cl[0]:]
            continue
    d = s.recv(1 << 20)
    if not d:
        break
    buf += d
print("%d %.3f" % (got, time.time() - t0))
PY
read -r GOT SECS < <(timeout 20 python3 "$SP_TMP/pipe.py" "$PORT" 100)
log "100 pipelined GETs: ${GOT:-0} answered in ${SECS:-?} s"
check_eq "100 pipelined GETs answered" "${GOT:-0}" 100
check "... well under a second each (under 5 s for all: hang guard)" \
	awk -v s="${SECS:-99}" 'BEGIN { exit !(s < 5) }'
check_eq "/metrics%00 is not /metrics" \
	"$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$URL%00")" 404
host_agent_stop h

host_agent_start d c --log off --metrics '[::]:0' || sp_finish
P6=$(sed -n 's|.*metrics http://\[::\]:\([0-9]*\)/metrics.*|\1|p' "$SP_TMP/d.err")
check "[::] answers on 127.0.0.1 too" curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$P6/metrics"
check "[::] answers on ::1" curl -sf --max-time 5 -o /dev/null "http://[::1]:$P6/metrics"
check_eq "a loopback address draws no warning" "$(grep -c 'reachable from other hosts' "$SP_TMP/h.err")" 0
check_eq "[::] draws one warning line" "$(grep -c 'metrics: \[::\]:0 is reachable from other hosts' "$SP_TMP/d.err")" 1
host_agent_stop d
sp_finish
