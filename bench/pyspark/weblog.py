"""Web-server log analysis (Apache common log format): the PySpark versions of the `weblog` Weft
job. Lines that do not match the pattern are counted as malformed and skipped; the pattern is the
one the Weft job's parser implements (`guest-examples/weblog/src/lib.rs`), passed in by the
benchmark so that there is a single definition."""

import os
import re

from common import main

PATTERN = os.environ["WEBLOG_PATTERN"]


def print_answer(lines, malformed, hosts, total_bytes, n, top, busiest_day, widest):
    print(f"{lines} lines, {lines - malformed} parsed, {malformed} malformed")
    print(f"{hosts} hosts, {total_bytes} bytes")
    print(f"top {n} hosts by requests:")
    for host, requests, sent in top:
        print(f"{requests} {sent} {host}")
    if busiest_day:
        print(f"busiest day: {busiest_day[0]} {busiest_day[1]} bytes")
    if widest:
        print(f"most widely requested resource: {widest[0]} {widest[1]} hosts")


def rdd_job(spark, path, n):
    line_re = re.compile(PATTERN)

    def parse(line):
        m = line_re.match(line)
        if m is None:
            return None
        sent = m.group(7)
        return m.group(1), m.group(2), m.group(4), 0 if sent == "-" else int(sent)

    parsed = spark.sparkContext.textFile(path).map(parse).cache()
    lines = parsed.count()
    logs = parsed.filter(lambda r: r is not None).cache()
    malformed = lines - logs.count()
    per_host = (logs.map(lambda r: (r[0], (1, r[3])))
                .reduceByKey(lambda a, b: (a[0] + b[0], a[1] + b[1]))
                .cache())
    hosts = per_host.count()
    total_bytes = per_host.map(lambda kv: kv[1][1]).sum()
    top = per_host.takeOrdered(n, key=lambda kv: (-kv[1][0], kv[0]))
    day = (logs.map(lambda r: (r[1], r[3])).reduceByKey(lambda a, b: a + b)
           .takeOrdered(1, key=lambda kv: (-kv[1], kv[0])))
    # Each resource's hosts folded into a set, as the Weft job does with `aggregate_by_key`.
    def add_host(hosts, host):
        hosts.add(host)
        return hosts

    def merge_hosts(a, b):
        a |= b
        return a

    widest = (logs.map(lambda r: (r[2], r[0]))
              .aggregateByKey(set(), add_host, merge_hosts)
              .mapValues(len)
              .takeOrdered(1, key=lambda kv: (-kv[1], kv[0])))
    print_answer(lines, malformed, hosts, total_bytes, n,
                 [(h, r, b) for h, (r, b) in top], day[0] if day else None,
                 widest[0] if widest else None)


def df_job(spark, path, n):
    from pyspark.sql import functions as F

    raw = spark.read.text(path)
    logs = (raw.where(F.col("value").rlike(PATTERN))
            .select(F.regexp_extract("value", PATTERN, 1).alias("host"),
                    F.regexp_extract("value", PATTERN, 2).alias("day"),
                    F.regexp_extract("value", PATTERN, 4).alias("path"),
                    F.regexp_extract("value", PATTERN, 7).alias("sent"))
            .select("host", "day", "path",
                    F.when(F.col("sent") == "-", F.lit(0)).otherwise(F.col("sent").cast("long"))
                    .alias("bytes"))
            .cache())
    lines = raw.count()
    malformed = lines - logs.count()
    per_host = logs.groupBy("host").agg(F.count("*").alias("requests"),
                                        F.sum("bytes").alias("bytes")).cache()
    totals = per_host.agg(F.count("*").alias("hosts"), F.sum("bytes").alias("bytes")).first()
    top = per_host.orderBy(F.desc("requests"), F.asc("host")).limit(n).collect()
    day = (logs.groupBy("day").agg(F.sum("bytes").alias("bytes"))
           .orderBy(F.desc("bytes"), F.asc("day")).limit(1).collect())
    widest = (logs.groupBy("path").agg(F.countDistinct("host").alias("hosts"))
              .orderBy(F.desc("hosts"), F.asc("path")).limit(1).collect())
    print_answer(lines, malformed, totals["hosts"], totals["bytes"] or 0, n,
                 [(r["host"], r["requests"], r["bytes"]) for r in top],
                 (day[0]["day"], day[0]["bytes"]) if day else None,
                 (widest[0]["path"], widest[0]["hosts"]) if widest else None)


if __name__ == "__main__":
    main("weblog", "web-server log analysis", rdd_job, df_job)
