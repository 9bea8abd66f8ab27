"""Reads a `sawmill run` output root with pyarrow and duckdb (clients that are not Sawmill) and
prints what they see as one JSON document on stdout: schemas, row counts, file metadata.

Usage: python3 read_output.py OUTPUT_ROOT
Exit 3 (with a message) when pyarrow or duckdb is missing.
"""
import glob
import json
import os
import sys

try:
    import duckdb
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
except ImportError as e:  # The Rust test turns this into its failure message.
    print(f"missing python module: {e}; run scripts/setup.sh --test", file=sys.stderr)
    sys.exit(3)


def schema(s):
    return [[f.name, str(f.type), f.nullable] for f in s]


def file_meta(path):
    kv = pq.read_metadata(path).metadata or {}
    return {k.decode(): v.decode() for k, v in kv.items() if k.startswith(b"sawmill.")}


def files(root, sub):
    return sorted(glob.glob(os.path.join(root, sub, "**", "*.parquet"), recursive=True))


def duck(sql):
    return duckdb.sql(sql).fetchall()


def duck_schema(glob_path, hive):
    rows = duck(f"DESCRIBE SELECT * FROM read_parquet('{glob_path}', hive_partitioning={hive})")
    return [[r[0], r[1]] for r in rows]


def main(root):
    out = {}
    records = ds.dataset(os.path.join(root, "records"), format="parquet", partitioning="hive")
    table = records.to_table()
    out["records"] = {
        "schema": schema(records.schema),
        "rows": table.num_rows,
        "dt_values": sorted({str(v) for v in table.column("dt").to_pylist()}),
        "files": {os.path.relpath(f, root): file_meta(f) for f in files(root, "records")},
    }
    rejects = ds.dataset(os.path.join(root, "rejects"), format="parquet")
    out["rejects"] = {
        "schema": schema(rejects.schema),
        "rows": rejects.count_rows(),
        "files": {os.path.relpath(f, root): file_meta(f) for f in files(root, "rejects")},
    }
    out["summary"] = {}
    for f in files(root, "summary"):
        t = pq.read_table(f)
        out["summary"][os.path.splitext(os.path.basename(f))[0]] = {
            "schema": schema(t.schema),
            "rows": t.num_rows,
            "metadata": file_meta(f),
            "duckdb_rows": duck(f"SELECT count(*) FROM read_parquet('{f}')")[0][0],
        }
    rec_glob = os.path.join(root, "records", "**", "*.parquet")
    rej_glob = os.path.join(root, "rejects", "*.parquet")
    out["duckdb"] = {
        "records_rows": duck(f"SELECT count(*) FROM read_parquet('{rec_glob}', hive_partitioning=true)")[0][0],
        "records_schema": duck_schema(rec_glob, "true"),
        "records_by_dt": {
            str(dt): n
            for dt, n in duck(
                f"SELECT dt, count(*) FROM read_parquet('{rec_glob}', hive_partitioning=true) "
                "WHERE CAST(dt AS DATE) = date GROUP BY dt ORDER BY dt"
            )
        },
        "rejects_rows": duck(f"SELECT count(*) FROM read_parquet('{rej_glob}')")[0][0],
        "rejects_schema": duck_schema(rej_glob, "false"),
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
