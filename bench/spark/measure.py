#!/usr/bin/env python3
"""Runs a command and measures it: wall seconds from start to exit, and peak memory as the
largest sum of RSS over the command's whole process tree (the python driver, the JVM it starts,
any python workers), sampled every --interval seconds from /proc. Standard library only.

    measure.py --out result.txt [--interval 0.1] -- CMD ARGS...

Writes `seconds=S peak_rss_kb=K samples=N exit=C` to --out; the command's own output passes
through. Exits with the command's status.
"""
import argparse
import os
import subprocess
import sys
import time


def children():
    """parent pid -> child pids, for every process now."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(root):
    kids = children()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss_kb(pid)
        todo.extend(kids.get(pid, []))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    start = time.monotonic()
    p = subprocess.Popen(cmd)
    peak, samples = 0, 0
    while p.poll() is None:
        peak = max(peak, tree_rss_kb(p.pid))
        samples += 1
        time.sleep(args.interval)
    secs = time.monotonic() - start
    with open(args.out, "w") as f:
        f.write(f"seconds={secs:.3f} peak_rss_kb={peak} samples={samples} exit={p.returncode}\n")
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
