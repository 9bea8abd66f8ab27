"""Splits a worker profile's samples by pipeline stage.

Reads `perf script -F comm,ip,sym --inline` on stdin; argv[1] is the process's user + system
CPU seconds; argv[2] `run` splits a `sawmill run` profile instead (its own stages). Each sample goes to the first stage whose rule matches its thread name and call
chain (inlined frames included), and prints a Markdown table: stage, share, CPU-seconds.
"""

import collections
import re
import sys


def has(stack, *words):
    return any(w in f for f in stack for w in words)


OTHER = "other (runtime, allocator, kernel, start-up)"
RULES = [
    ("consumer thread: librdkafka poll, per message",
     lambda c, s: c == "kafka-consumer" and has(s, "poll_queue")),
    ("consumer thread: copy into batches",
     lambda c, s: c == "kafka-consumer" and has(s, "MessageBatch", "accept", "memmove")),
    ("consumer thread: other", lambda c, s: c == "kafka-consumer"),
    ("Kafka fetch + decompress (librdkafka broker thread)",
     lambda c, s: c.startswith("rdk:broker")),
    ("librdkafka other threads", lambda c, s: c.startswith("rdk:")),
    ("Parquet compression (zstd)",
     lambda c, s: has(s, "encode_chunk") and any(f.startswith("ZSTD") for f in s)),
    ("Parquet encoding", lambda c, s: has(s, "encode_chunk")),
    ("partial encoding (to_bytes)", lambda c, s: has(s, "to_bytes")),
    ("Arrow building: finish", lambda c, s: has(s, "ChunkParser::finish")),
    ("parse (parse_line)", lambda c, s: has(s, "parse_line")),
    ("aggregate (Partial::observe: hosts, endpoints)",
     lambda c, s: any(re.search(r"\bobserve", f) for f in s) or has(s, "intern<", "analytics::")),
    ("Arrow building (append, in ChunkParser::push)", lambda c, s: has(s, "ChunkParser::push", "push_observed")),
    ("HDFS writes (hdfs-native)", lambda c, s: has(s, "hdfs_native")),
    ("etcd (etcd-client)", lambda c, s: any("etcd" in f.lower() for f in s)),
    ("partition actor: other", lambda c, s: has(s, "PartitionActor")),
]

RUN_RULES = [
    ("reading and cutting chunks (reader thread: read, count lines)",
     lambda c, s: has(s, "next_chunk_in", "Chunker::")),
    ("final merge (serial)", lambda c, s: has(s, "merge_all", "Partial::merge")),
    ("summary tables (build + encode)", lambda c, s: has(s, "summary::encode")),
    ("Parquet compression (zstd)",
     lambda c, s: has(s, "encode_chunk") and any(f.startswith("ZSTD") for f in s)),
    ("Parquet encoding", lambda c, s: has(s, "encode_chunk")),
    ("writing files", lambda c, s: has(s, "write_atomic", "storage::")),
    ("Arrow building: finish", lambda c, s: has(s, "ChunkParser::finish")),
    ("parse (parse_line)", lambda c, s: has(s, "parse_line")),
    ("aggregate: host and endpoint lookups",
     lambda c, s: has(s, "intern<sawmill_core", "host_id", "endpoint_id")),
    ("aggregate: counting", lambda c, s: any(re.search(r"\bobserve|\bfold\b", f) for f in s)),
    ("UTF-8 checks", lambda c, s: has(s, "from_utf8", "text_of")),
    ("Arrow building (append)", lambda c, s: has(s, "ChunkParser::push", "push_observed", "push_all")),
]


def main():
    cpu = float(sys.argv[1])
    rules = RUN_RULES if sys.argv[2:] == ["run"] else RULES
    counts = collections.Counter()
    total = 0
    comm, stack = None, []

    def flush():
        nonlocal total
        if comm is None:
            return
        total += 1
        for name, rule in rules:
            if rule(comm, stack):
                counts[name] += 1
                return
        counts[OTHER] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            comm, stack = None, []
        elif not line.startswith((" ", "\t")):
            flush()
            comm, stack = (line.split() or ["?"])[0], []
        else:
            parts = line.strip().split(None, 1)
            stack.append(parts[-1])
    flush()
    print(f"{total} samples, {cpu:.2f} CPU-s (user + system)\n")
    print("| stage | share | CPU-s |\n|---|---:|---:|")
    for name in [n for n, _ in rules] + [OTHER]:
        n = counts[name]
        print(f"| {name} | {100 * n / max(total, 1):.1f} % | {cpu * n / max(total, 1):.2f} |")


main()
