#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Writes top.jsonl, the fixed input of test_top_golden.sh (see its header for what it holds):
# JSON lines as the agent logs them, on a fixed clock. Run it from anywhere after changing the
# scenario, then SP_GOLDEN_UPDATE=1 on the test to rewrite the golden screens.
import json
import os
import time
T0 = 1796551200 * 10**9  # 2026-12-06T10:00:00Z
lines = []
def ts(ns):
    s, f = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%09dZ" % f
def conn(c):
    d = {}
    d["source"] = {"ip": c["sip"], "port": c["sport"]} if c.get("sport") else {"ip": c["sip"]}
    d["destination"] = {"ip": c["dip"], "port": c["dport"]}
    d["network"] = {"transport": "tcp", "type": "ipv6" if ":" in c["dip"] else "ipv4", "direction": c["dir"]}
    d["process"] = {"pid": c["pid"], "name": c["comm"]}
    return d
# the owners' cgroups (the SERVICE column): a unit, a docker container, a pod's container; the
# clients have none (their command is shown)
CGROUPS = {
    "api": "/system.slice/api.service",
    "server": "/system.slice/docker-4f1c7e2d9a8b6c5d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d.scope",
    "worker": "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f6a_7b8c_9d0e_1f2a3b4c5d6e.slice/cri-containerd-a3b1f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1.scope",
}
def emit(t, action, c, sp=None, ev=None, err=None):
    o = {"@timestamp": ts(t), "event": {"kind": "event", "action": action}}
    if ev: o["event"].update(ev)
    if c: o.update(conn(c))
    if err: o["error"] = {"code": err}
    s = {"schema": 1}
    if c: s["sock"] = c["sock"]; s["netns"] = 4026531840
    if c and c["comm"] in CGROUPS: s["cgroup"] = CGROUPS[c["comm"]]
    if sp: s.update(sp)
    o["sockpulse"] = s
    lines.append((t, o))
S = 10**9
cookie = [1000]
def new(sip, dip, dport, d, pid, comm, sport):
    cookie[0] += 1
    return dict(sip=sip, dip=dip, dport=dport, dir=d, pid=pid, comm=comm, sport=sport, sock=cookie[0])
def open_egress(t, c):
    emit(t, "tcp-state-change", c, {"old_state": "close", "new_state": "syn_sent"})
    emit(t + 90000, "tcp-connect", c, ev={"outcome": "success", "duration": 90000})
    emit(t + 95000, "tcp-state-change", c, {"old_state": "syn_sent", "new_state": "established"}, ev={"duration": 95000})
def open_ingress(t, c):
    emit(t + 96000, "tcp-state-change", c, {"old_state": "syn_recv", "new_state": "established"}, ev={"duration": 20000})
def activity(t0, t1, c, step=S, payload=64):
    t = t0
    while t < t1:
        emit(t, "tcp-activity", c, {"activity": {"segments": 2, "payload_bytes": payload}})
        t += step
END = T0 + 14 * S
# peer A: three connections to a database, one goes silent
a = [new("10.1.0.1", "10.1.0.2", 5432, "egress", 4121, "api", 40001 + i) for i in range(3)]
for i, c in enumerate(a):
    open_egress(T0 + i * 100 * 10**6, c)
    activity(T0 + S + i * 10**7, END if i < 2 else T0 + 2 * S, c, step=2 * S)
# loopback pair on 6411 and 6412: both ends on this host
for k, port in enumerate((6411, 6412)):
    cl = new("127.0.0.1", "127.0.0.1", port, "egress", 5001 + k, "client", 51000 + k)
    sv = dict(cl, dir="ingress", pid=5000, comm="server", sock=cl["sock"] + 100)
    open_egress(T0 + (2 + k) * S, cl)
    open_ingress(T0 + (2 + k) * S, sv)
    activity(T0 + (3 + k) * S, END, cl, step=2 * S)
    activity(T0 + (3 + k) * S + 3 * 10**8, END, sv, step=2 * S)
# IPv6 peer: one connection that ends normally
v = new("fd00::1", "fd00::2", 443, "egress", 4121, "api", 42000)
open_egress(T0 + 2 * S, v)
activity(T0 + 3 * S, T0 + 6 * S, v, step=2 * S)
emit(T0 + 6 * S, "tcp-state-change", v, {"old_state": "established", "new_state": "fin_wait1"})
emit(T0 + 6 * S + 10**6, "tcp-state-change", v, {"old_state": "fin_wait1", "new_state": "fin_wait2"})
emit(T0 + 6 * S + 2 * 10**6, "tcp-state-change", v, {"old_state": "fin_wait2", "new_state": "close", "time_wait": True})
# refused connects to 10.1.0.9:8080: 4 a second from 1 s to 14 s
t = T0 + 1 * S
i = 0
while t < T0 + 14 * S:
    c = new("10.1.0.1", "10.1.0.9", 8080, "egress", 7001, "worker", 43000 + i)
    emit(t, "tcp-state-change", c, {"old_state": "close", "new_state": "syn_sent"})
    emit(t + 120000, "tcp-reset", c, {"reset": {"direction": "received"}, "old_state": "syn_sent"})
    emit(t + 130000, "tcp-connect", c, {"failure": "refused"}, ev={"outcome": "failure", "duration": 130000}, err="ECONNREFUSED")
    emit(t + 140000, "tcp-state-change", c, {"old_state": "syn_sent", "new_state": "close"})
    t += S // 4
    i += 1
lines.sort(key=lambda x: x[0])
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "top.jsonl"), "w") as f:
    for n, (t, o) in enumerate(lines, 1):
        o["event"]["sequence"] = n
        f.write(json.dumps(o, separators=(",", ":")) + "\n")
