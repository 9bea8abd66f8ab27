"""Reads the status polls of deploy/container/fleet-test.sh (`sawmill status --json` documents,
one "<unix ms> <json>" line each; shape in docs/http-api.md).

  fleet_status.py settled PARTITIONS PREFIX...  (stdin: one poll) exit 0 when every partition is
      owned, balanced over exactly the live workers whose ids start with PREFIX- (one per
      expected container hostname), each partition in exactly one live worker's heartbeat
  fleet_status.py done LINES                    (stdin: one poll) exit 0 at lag 0 with LINES merged
  fleet_status.py report PARTITIONS RESULTS     checks every poll between a change settling and the
      next change (the ownership invariant), prints the figures, writes RESULTS/figures.tsv;
      exit 1 on a violation
"""
import json
import sys


def parse(line):
    ms, _, doc = line.partition(" ")
    return int(ms), json.loads(doc)


def live(doc):
    return {w["id"]: set(w.get("owned") or []) for w in doc.get("workers", []) if w.get("alive")}


def problems(doc, partitions):
    """Why this poll breaks 'every partition owned by exactly one live worker' (empty if none)."""
    out = []
    alive = live(doc)
    parts = doc.get("partitions", [])
    if len(parts) != partitions:
        out.append(f"{len(parts)} partitions in the status, not {partitions}")
    for p in parts:
        n, owner = p["partition"], p.get("owner")
        if p.get("state") != "owned" or owner not in alive:
            out.append(f"partition {n}: state {p.get('state')}, owner {owner!r} (live: {sorted(alive)})")
            continue
        holders = [w for w, owned in alive.items() if n in owned]
        if holders != [owner]:
            out.append(f"partition {n}: owner {owner}, running on live workers {holders}")
    return out


def owners(doc):
    return {p["partition"]: p.get("owner") for p in doc.get("partitions", [])}


def settled(doc, partitions, prefixes):
    if problems(doc, partitions):
        return False
    alive = live(doc)
    ids = sorted(alive)
    if len(ids) != len(prefixes) or sorted(i.rsplit("-", 1)[0] for i in ids) != sorted(prefixes):
        return False
    counts = [list(owners(doc).values()).count(w) for w in ids]
    return max(counts) - min(counts) <= 1


def done(doc, lines):
    m = doc.get("merged") or {}
    caught_up = all(p.get("lag") == 0 and p.get("committed_offset") == p.get("end_offset")
                    for p in doc.get("partitions", []))
    return caught_up and m.get("records", 0) + m.get("rejects", 0) == lines


def report(partitions, results):
    polls = []
    with open(f"{results}/status.jsonl") as f:
        for line in f:
            try:
                polls.append(parse(line))
            except ValueError:
                pass  # a line cut by the probe's removal
    events = []
    with open(f"{results}/events.tsv") as f:
        for line in f:
            name, start, end, _ = line.rstrip("\n").split("\t")
            events.append((name, int(start), int(end)))
    failures, rows = [], []
    for i, (name, start, end) in enumerate(events):
        before = [d for t, d in polls if t < start]
        after = [d for t, d in polls if t >= end]
        moved = 0
        if before and after:
            a, b = owners(before[-1]), owners(after[0])
            moved = sum(1 for p in b if a.get(p) != b[p])
        # The invariant holds from this change's settling until the next change starts.
        until = events[i + 1][1] if i + 1 < len(events) else float("inf")
        window = [(t, d) for t, d in polls if end <= t < until]
        for t, d in window:
            for why in problems(d, partitions):
                failures.append(f"{name}: poll at +{t - end} ms after settling: {why}")
        rows.append((name, end - start, moved, len(window)))
    print()
    print(f"{'change':<28} {'settled after':>14} {'partitions moved':>17} {'polls checked':>14}")
    for name, ms, moved, n in rows:
        print(f"{name:<28} {ms:>11} ms {moved:>17} {n:>14}")
    with open(f"{results}/figures.tsv", "w") as f:
        f.write("change\tsettled_ms\tpartitions_moved\tpolls_checked\n")
        for name, ms, moved, n in rows:
            f.write(f"{name}\t{ms}\t{moved}\t{n}\n")
    checked = sum(r[3] for r in rows)
    print(f"\n{len(polls)} status polls, {checked} checked after settling, "
          f"{len(failures)} ownership violations")
    for why in failures[:20]:
        print(f"  {why}")
    return not failures and checked > 0


def main():
    cmd = sys.argv[1]
    if cmd == "settled":
        line = sys.stdin.readline()
        ok = bool(line.strip()) and settled(parse(line)[1], int(sys.argv[2]), sys.argv[3:])
    elif cmd == "done":
        line = sys.stdin.readline()
        ok = bool(line.strip()) and done(parse(line)[1], int(sys.argv[2]))
    elif cmd == "report":
        ok = report(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(f"fleet_status.py: unknown command {cmd!r}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
