#!/usr/bin/env python3
"""The original pipeline, as the benchmark baseline (issue #14): PySpark Structured Streaming reads
the Kafka topic, parses every line with the original regexes (`regexp_extract`, docs/parsing.md),
writes the parsed rows as Parquet (`records/`), then computes the original notebook's eight
tables from them and writes each as Parquet (`summary/<table>/`).

    python pipeline.py --bootstrap-servers 127.0.0.1:9092 --topic T --output hdfs://.../root \
        --checkpoint /var/tmp/ckpt --jars a.jar,b.jar [--driver-memory 2g] [--master local[2]]

The streaming query uses `trigger(availableNow=True)`, so it ends once everything in the topic
when it started is consumed. Memory is set explicitly: `spark.driver.memory` (local mode: the
driver JVM also runs the executor tasks, so this is the whole heap). Prints one line at the end:
`spark: rows=N seconds=S` (seconds from process start).
"""
import argparse
import sys
import time

T0 = time.time()

from pyspark.sql import SparkSession  # noqa: E402  (imported after T0 on purpose)
from pyspark.sql import functions as F  # noqa: E402

# The original patterns, verbatim (docs/parsing.md, "Where Sawmill deliberately differs").
HOST = r"^(\S+\.[\S+\.]+\S+)\s"
TS = r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} -\d{4})]"
REQUEST = r"\"(\S+)\s(\S+)\s*(\S*)\""
STATUS = r"\s(\d{3})\s"
SIZE = r"\s(\d+)$"

TABLES = [
    "null_value_count",
    "content_stats",
    "table_404",
    "status_count",
    "host_count",
    "endpoint_count",
    "unique_host_count",
    "daily_request_count",
]


def session(args):
    b = (
        SparkSession.builder.master(args.master)
        .appName("sawmill-baseline-original-pipeline")
        # Memory, explicit: local mode runs the executor inside the driver JVM.
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.jars", args.jars)
        # The original ran on Spark 2/3, where a failed cast gives null; Spark 4 turns ANSI mode
        # on by default, which would fail the job on the first '' status instead.
        .config("spark.sql.ansi.enabled", "false")
        # Wall-clock fields come from the log's own time, not the machine's zone.
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # One DataNode: write one replica (as the services' own dfs.replication), reach it by
        # the hostname it registered with.
        .config("spark.hadoop.dfs.replication", "1")
        .config("spark.hadoop.dfs.client.use.datanode.hostname", "true")
    )
    return b.getOrCreate()


def parse(value):
    """The original extraction: every column via regexp_extract ('' when nothing matches)."""
    return [
        F.regexp_extract(value, HOST, 1).alias("host"),
        F.regexp_extract(value, TS, 1).alias("timestamp"),
        F.regexp_extract(value, REQUEST, 1).alias("method"),
        F.regexp_extract(value, REQUEST, 2).alias("endpoint"),
        F.regexp_extract(value, REQUEST, 3).alias("protocol"),
        F.regexp_extract(value, STATUS, 1).cast("integer").alias("status"),
        F.regexp_extract(value, SIZE, 1).cast("integer").alias("content_size"),
    ]


def stream_records(spark, args):
    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap_servers)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "true")
        .load()
    )
    value = F.col("value").cast("string")
    rows = raw.select(
        *parse(value),
        F.col("partition"),
        F.col("offset"),
    ).withColumn(
        # The original's parse_clf_time: the wall-clock time, the zone dropped. Built in
        # (to_timestamp) instead of a Python UDF, which only makes the baseline faster.
        "time",
        F.to_timestamp(F.substring("timestamp", 1, 20), "dd/MMM/yyyy:HH:mm:ss"),
    )
    q = (
        rows.writeStream.format("parquet")
        .option("path", f"{args.output}/records")
        .option("checkpointLocation", args.checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    q.awaitTermination()
    return q


def missing(c, text):
    """A missing value: null, or for the text columns the '' regexp_extract gives on no match."""
    cond = F.col(c).isNull() | (F.col(c) == "") if text else F.col(c).isNull()
    return F.sum(cond.cast("long")).alias(c)


def tables(spark, args):
    logs = spark.read.parquet(f"{args.output}/records")
    text = {"host", "timestamp", "method", "endpoint", "protocol"}
    cols = ["host", "timestamp", "method", "endpoint", "protocol", "status", "content_size"]
    out = {}
    # 1. Missing values per column, over every line read (before any cleaning).
    out["null_value_count"] = logs.agg(*[missing(c, c in text) for c in cols])
    # Cleaning as the original: lines without a status are dropped, missing sizes become 0.
    logs = logs.filter(F.col("status").isNotNull()).na.fill({"content_size": 0})
    logs = logs.select(
        "host", "method", "endpoint", "protocol", "status", "content_size",
        F.dayofmonth("time").alias("day"),
        F.hour("time").alias("hour"),
        F.dayofweek("time").alias("dayofweek"),
    ).cache()
    # 2. Content-size statistics.
    out["content_stats"] = logs.agg(
        F.min("content_size").alias("min_content_size"),
        F.max("content_size").alias("max_content_size"),
        F.mean("content_size").alias("mean_content_size"),
        F.stddev("content_size").alias("std_content_size"),
        F.count("content_size").alias("count_content_size"),
    )
    # 3. The 404 records.
    out["table_404"] = logs.filter(F.col("status") == 404).select(
        "endpoint", "host", "dayofweek", "day", "hour"
    )
    # 4 - 6. Counts by status, host, endpoint (and day of week).
    out["status_count"] = logs.groupBy("status").count().sort("status")
    out["host_count"] = logs.groupBy("host").count().sort(F.desc("count"), "host")
    out["endpoint_count"] = (
        logs.groupBy("endpoint", F.col("dayofweek").alias("weekday"))
        .count()
        .sort(F.desc("count"), "endpoint", "weekday")
    )
    # 7. Unique hosts per day (day of month, as the original keyed it).
    out["unique_host_count"] = (
        logs.select("host", "day").dropDuplicates().groupBy("day").count().sort("day")
    )
    # 8. Requests per day.
    out["daily_request_count"] = logs.groupBy("day").count().sort("day")
    for name in TABLES:
        out[name].coalesce(1).write.mode("overwrite").parquet(f"{args.output}/summary/{name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--output", required=True, help="root: records/ and summary/<table>/")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--jars", required=True, help="comma-separated: the Kafka connector and its deps")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="2g")
    args = ap.parse_args()
    spark = session(args)
    spark.sparkContext.setLogLevel("WARN")
    q = stream_records(spark, args)
    rows = sum(p["numInputRows"] for p in q.recentProgress)
    tables(spark, args)
    spark.stop()
    print(f"spark: rows={rows} seconds={time.time() - T0:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
