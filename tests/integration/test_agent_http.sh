#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The metrics server cannot disturb event intake: while clients hold connections open without
# a word (half-open), send garbage, dribble a request one byte at a time, or send an oversized
# header, a burst of connections is counted completely, the loop never stalls, and a normal
# scrape still answers. Garbage gets an error and the connection closed; idle clients are
# dropped after the connection timeout.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || skip "curl not installed"
command -v python3 >/dev/null || skip "python3 not installed"

N=300
ns_new c
host_agent_start h c || sp_finish
URL=${SP_METRICS_URL[h]}
HOSTPORT=${URL#http://}
HOSTPORT=${HOSTPORT%/metrics}
HOST=${HOSTPORT%:*}
PORT=${HOSTPORT##*:}

# The bad clients, in one bounded helper: 10 silent connections and one that stops inside a
# TLS hello, 5 garbage requests (their replies recorded), one slow dribbler, one 100 KiB header; all held for 14 s.
cat >"$SP_TMP/bad.py" <<'PY'
import socket, sys, time
host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline = time.time() + 14
silent = [socket.create_connection((host, port), 5) for _ in range(10)]
silent.append(socket.create_connection((host, port), 5))
silent[-1].sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")  # a TLS hello, no line end
replies = []
for req in (b"GARBAGE\r\n\r\n", b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n",
            b"BREW /pot HTCPCP/1.0\r\n\r\n", b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", b"GET\r\n\r\n"):
    s = socket.create_connection((host, port), 5)
    s.sendall(req)
    s.settimeout(5)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        data = b"TIMEOUT"
    except OSError:
        pass
    replies.append(data.split(b"\r\n", 1)[0].decode("latin-1") or "CLOSED")
    s.close()
big = socket.create_connection((host, port), 5)
try:
    big.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
except OSError:
    pass
slow = socket.create_connection((host, port), 5)
req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
i = 0
while time.time() < deadline:
    if i < len(req):
        try:
            slow.send(req[i:i + 1])
        except OSError:
            break
        i += 1
    time.sleep(0.5)
closed = 0
for s in silent:
    s.settimeout(0.1)
    try:
        if s.recv(1) == b"":
            closed += 1
    except socket.timeout:
        pass
    except OSError:
        closed += 1
with open(out, "w") as f:
    for r in replies:
        f.write("reply %s\n" % r)
    f.write("silent_closed %d\n" % closed)
PY
bg_run "$SP_TMP/bad.out" timeout 30 python3 "$SP_TMP/bad.py" "$HOST" "$PORT" "$SP_TMP/bad.txt"
BAD=$BG_PID
sleep 1
bg_run "$SP_TMP/burst.out" nsx c "$SP_CONN" burst 127.0.0.1 5908 --count $N --deadline 60
wait_pid "$BG_PID" 60
check_eq "burst completed" "$(kv "$SP_TMP/burst.out" burst failed)" 0
check "a normal scrape answers while the bad clients hold on" scrape h "$SP_TMP/during.prom"
check "every connect of the burst counted" \
	wait_metric h 'sockpulse_tcp_connects_total{outcome="success"}' -eq $N 10
wait_pid "$BAD" 30
check "the bad-client helper finished" test -s "$SP_TMP/bad.txt"
check_eq "garbage requests get an error status or the connection closed, at once" \
	"$(grep -Ec '^reply (HTTP/1.[01] [45][0-9][0-9] |CLOSED$)' "$SP_TMP/bad.txt")" 5 ||
	sed 's/^/    /' "$SP_TMP/bad.txt"
check_eq "silent clients were dropped by the connection timeout" \
	"$(sed -n 's/^silent_closed //p' "$SP_TMP/bad.txt")" 11
check "scrape after the bad clients" scrape h "$SP_TMP/after.prom"
check_eq "the loop never stalled" "$(metric "$SP_TMP/after.prom" sockpulse_loop_stalls_total)" 0
check_eq "nothing lost" "$(metric "$SP_TMP/after.prom" 'sockpulse_events_lost_total{kind="state"}')" 0
check "requests are counted" test "$(metric "$SP_TMP/after.prom" 'sockpulse_http_requests_total{code="200"}')" -ge 2
check_eq "HEAD works" "$(curl -s --max-time 5 -I -o /dev/null -w '%{http_code}' "$URL")" 200
check_eq "POST is refused" "$(curl -s --max-time 5 -X POST -d x -o /dev/null -w '%{http_code}' "$URL")" 405
host_agent_stop h TERM
LOG=$(host_agent_log h)
check_eq "every connect of the burst is in the log" \
	"$(count "$LOG" '.event.action == "tcp-connect" and .destination.port == 5908')" $N
sp_finish
