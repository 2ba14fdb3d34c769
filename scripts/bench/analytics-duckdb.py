#!/usr/bin/env python3
"""The same questions' SQL in DuckDB, for choosing the analytics engine by measurement.

Usage: scripts/bench/analytics-duckdb.py <dir>   (the directory `cargo xtask analytics --keep <dir>` wrote)

Reads the tables of <dir>/analytics.db (SQLite) into an in-memory DuckDB database through CSV files, then runs
each query of <dir>/queries.json (the SQL Tutti ran for each question, values written in) five times and
prints first, median and max in milliseconds, beside the load time. Needs `pip install duckdb`.
"""
import csv, json, os, sqlite3, statistics, sys, tempfile, time

import duckdb

here = sys.argv[1]
queries = json.load(open(os.path.join(here, "queries.json")))
source = sqlite3.connect(os.path.join(here, "analytics.db"))
tables = {
    "names": "id BIGINT, name VARCHAR",
    "events": "seq BIGINT, ts BIGINT, profile BIGINT, name BIGINT, revenue DOUBLE, currency VARCHAR, props VARCHAR",
    "items": "seq BIGINT, line BIGINT, ts BIGINT, profile BIGINT, product_id VARCHAR, sku VARCHAR, name VARCHAR, category VARCHAR, brand VARCHAR, variant VARCHAR, price DOUBLE, quantity DOUBLE, amount DOUBLE, currency VARCHAR",
    "active": "slot BIGINT, profile BIGINT",
    "profiles": "profile BIGINT, traits VARCHAR",
}
db = duckdb.connect()
began = time.time()
with tempfile.TemporaryDirectory() as tmp:
    for table, columns in tables.items():
        path = os.path.join(tmp, table + ".csv")
        names = [c.split()[0] for c in columns.split(", ")]
        with open(path, "w", newline="") as f:
            out = csv.writer(f)
            for row in source.execute(f"SELECT {', '.join(names)} FROM {table}"):
                out.writerow(["" if v is None else v for v in row])
        exported = time.time()
        db.execute(f"CREATE TABLE {table} ({columns})")
        db.execute(f"COPY {table} FROM '{path}' (HEADER false, NULLSTR '')")
loaded = time.time() - began
print(f"DuckDB {duckdb.__version__}: tables exported from SQLite and loaded in {loaded:.0f} s\n")
print("| question | rows | first | median | max |")
print("|---|---|---|---|---|")
for q in queries:
    times, rows = [], 0
    for _ in range(5):
        t = time.time()
        rows = len(db.execute(q["sql"]).fetchall())
        times.append((time.time() - t) * 1000)
    print(f"| {q['name']} | {rows} | {times[0]:.0f} | {statistics.median(times):.0f} | {max(times):.0f} |")
