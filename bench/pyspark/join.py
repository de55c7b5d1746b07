"""Every flight joined with its airline by carrier code, then the number of flights, how many
departed and the average departure delay per airline (`NA` skipped): the PySpark versions of the
`flights_join` Weft job, printed like it (most delayed first)."""

import csv

from common import main


def print_answer(rows):
    """rows: (carrier, name, flights, departed, sum of delays)."""
    out = []
    for carrier, name, n, departed, total in rows:
        avg = total / departed if departed else float("nan")
        out.append((carrier, name, n, departed, avg))
    # Most delayed first, ties by carrier; NaN (no departures) first, as in Rust's total order.
    out.sort(key=lambda r: (0 if r[4] != r[4] else 1, -r[4] if r[4] == r[4] else 0, r[0]))
    print("carrier flights departed avg_delay name")
    for carrier, name, n, departed, avg in out:
        print(f"{carrier} {n} {departed} {avg:.2f} {name}")


def rdd_job(spark, path, _top, airlines_path):
    sc = spark.sparkContext
    lines = sc.textFile(path)
    header = lines.first()
    names = header.split(",")
    carrier, delay = names.index("carrier"), names.index("dep_delay")

    def flight(line):
        f = line.split(",")
        d = f[delay]
        return f[carrier], (None if d in ("NA", "") else float(d))

    def airline_rows(lines):
        return (tuple(r) for r in csv.reader(lines))

    airlines_lines = sc.textFile(airlines_path)
    airlines_header = airlines_lines.first()
    airlines = airlines_lines.filter(lambda l: l != airlines_header).mapPartitions(airline_rows)

    def totals(kv):
        code, (d, name) = kv
        return (code, name), (1, 0, 0.0) if d is None else (1, 1, d)

    per_airline = (lines.filter(lambda l: l != header)
                   .map(flight)
                   .join(airlines)
                   .map(totals)
                   .reduceByKey(lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2]))
                   .collect())
    print_answer([(c, name, n, d, s) for (c, name), (n, d, s) in per_airline])


def df_job(spark, path, _top, airlines_path):
    from pyspark.sql import functions as F

    schema = ("year INT, month INT, day INT, dep_time INT, sched_dep_time INT, dep_delay DOUBLE, "
              "arr_time INT, sched_arr_time INT, arr_delay DOUBLE, carrier STRING, flight INT, "
              "tailnum STRING, origin STRING, dest STRING, air_time DOUBLE, distance DOUBLE, "
              "hour INT, minute INT, time_hour STRING")
    flights = spark.read.csv(path, header=True, schema=schema, nullValue="NA")
    airlines = spark.read.csv(airlines_path, header=True, schema="carrier STRING, name STRING")
    rows = (flights.join(airlines, "carrier")
            .groupBy("carrier", "name")
            .agg(F.count("*").alias("n"), F.count("dep_delay").alias("departed"),
                 F.sum("dep_delay").alias("total"))
            .collect())
    print_answer([(r["carrier"], r["name"], r["n"], r["departed"], r["total"] or 0.0)
                  for r in rows])


if __name__ == "__main__":
    main("join", "flights joined with airlines, average delay per airline", rdd_job, df_job)
