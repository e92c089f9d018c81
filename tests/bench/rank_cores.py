#!/usr/bin/env python3
"""Runs a command (a `clusterctl bench` of several ranks) and, while it runs, samples which core
each clusterctl-worker process last ran on: prints the command's stdout, and on stderr one line,
the share of samples in which the ranks were spread over the cores as evenly as they can be
("even 93 %": of the last 40 % of the run, past loading the model), the ranks' context switches (voluntary / not), and each
rank's seconds on a core and waiting for one (/proc/PID/schedstat). Ranks that outnumber the cores
take turns on them between all-reduces: an uneven spread (3 ranks on one of 2 cores) makes that
core's turns the pass's time.
With --machine FILE it watches instead every clusterctl-worker in a network namespace other than
its own (a test cluster's ranks: they run under its nodes' sshd, not under COMMAND; another job's
ranks on this machine's own network are left out) and writes to FILE, as JSON, each rank's
seconds on a core and waiting for one while COMMAND ran, and COMMAND's seconds: how much of a
rank's time in the collectives was CPU (polling, copying) and how much the ranks queued for a core.
Usage: rank_cores.py [--machine FILE] COMMAND..."""
import collections
import json
import os
import subprocess
import sys
import time


def workers(root):
    """The clusterctl-worker processes started by `root` (not another job's on the same machine);
    where `root` is None, every one in another network namespace (a test cluster's nodes)."""
    own_net = os.readlink("/proc/self/ns/net")
    parent, names = {}, {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
                names[int(d)] = s[s.index("(") + 1:s.rindex(")")]
                parent[int(d)] = int(s[s.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass

    def started_by_root(p):
        if root is None:
            try:
                return os.readlink(f"/proc/{p}/ns/net") != own_net
            except OSError:
                return False
        while p > 1:
            if p == root:
                return True
            p = parent.get(p, 0)
        return False
    return [p for p, n in names.items() if n.startswith("clusterctl-work") and started_by_root(p)]


def last_core(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return int(s[s.rindex(")") + 2:].split()[36])  # field 39, "processor"


def schedstat(pid):
    """Nanoseconds on a core and waiting on a run queue for one (/proc/PID/schedstat)."""
    with open(f"/proc/{pid}/schedstat") as f:
        run, wait, _ = f.read().split()
    return int(run), int(wait)


def switches(pid):
    v = n = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                v = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                n = int(line.split()[1])
    return v, n


args = sys.argv[1:]
window_file = None
if args[:1] == ["--machine"]:
    window_file, args = args[1], args[2:]
started = time.monotonic()
proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
root = None if window_file else proc.pid
first = {}  # each rank's schedstat when first seen: --machine counts from there
cores = os.cpu_count() or 1
even = []
seen = {}
sched = {}
# Every 20 ms, the ranks found again every 0.5 s: the sampling takes well under 1 % of a core
# from the ranks it watches.
pids, found_at = [], 0.0
while proc.poll() is None:
    try:
        if time.monotonic() - found_at > 0.5:
            pids, found_at = workers(root), time.monotonic()
        per_core = collections.Counter(last_core(p) for p in pids)
        for p in pids:
            seen[p] = switches(p)
            sched[p] = schedstat(p)
            first.setdefault(p, sched[p])
    except OSError:
        pids, found_at = [], 0.0
        continue
    if len(pids) > 1:
        busiest = max(per_core.values())
        even.append(busiest <= -(-len(pids) // cores))
    time.sleep(0.02)
out = proc.stdout.read()
sys.stdout.write(out)
even = even[len(even) * 6 // 10:]
total = len(even)
vol = sum(v for v, _ in seen.values())
invol = sum(n for _, n in seen.values())
# Each rank's time on a core and waiting for one over its whole life (load included), lowest wait first:
# ranks taking turns on a core wait while the other runs; a rank with a core of its own hardly does.
turns = ", ".join(f"{r / 1e9:.1f}/{w / 1e9:.1f}" for r, w in sorted(sched.values(), key=lambda v: v[1]))
print((f"even {100 * sum(even) / total:.0f} %, switches {vol}/{invol}" if total else "even ?") +
      (f", s on a core / waiting for one {turns}" if turns else ""), file=sys.stderr)
if window_file:
    ranks = [{"pid": p, "on_core_s": (sched[p][0] - first[p][0]) / 1e9, "queued_s": (sched[p][1] - first[p][1]) / 1e9}
             for p in sorted(sched)]
    with open(window_file, "w") as f:
        json.dump({"seconds": time.monotonic() - started, "cores": cores, "ranks": ranks}, f)
sys.exit(proc.wait())
