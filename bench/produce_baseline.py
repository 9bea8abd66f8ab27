#!/usr/bin/env python3
"""Baseline for `sawmill produce`: the original Python producer's approach with kafka-python —
one `producer.send(topic, line)` per line, then `flush()`. Producer settings are kafka-python's
defaults, as in the original. Prints one summary line: lines, seconds, lines/s.

    python3 bench/produce_baseline.py --bootstrap-servers 127.0.0.1:9092 --topic t --file F [--limit N]
"""
import argparse
import sys
import time

from kafka import KafkaProducer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", default="localhost:9092")
    ap.add_argument("--topic", default="kafka_test")
    ap.add_argument("--file", required=True)
    ap.add_argument("--limit", type=int, default=-1, help="-1 = all lines")
    args = ap.parse_args()

    producer = KafkaProducer(bootstrap_servers=args.bootstrap_servers)
    start = time.monotonic()
    sent = 0
    with open(args.file, "rb") as f:
        for line in f:
            if sent == args.limit:
                break
            producer.send(args.topic, line.rstrip(b"\r\n"))
            sent += 1
    producer.flush()
    secs = time.monotonic() - start
    producer.close()
    print(f"python kafka-python: {sent} lines in {secs:.2f} s = {sent / secs:.0f} lines/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
