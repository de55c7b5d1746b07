"""Average departure delay per carrier over nycflights13 rows (`NA` skipped): the PySpark
versions of the `flights` Weft job, printed like it (most delayed first, no airline names)."""

from common import main


def print_answer(rows):
    """rows: (carrier, flights, departed, sum of delays)."""
    out = []
    for carrier, n, departed, total in rows:
        avg = total / departed if departed else float("nan")
        out.append((carrier, n, departed, avg))
    # Most delayed first, ties by carrier; NaN (no departures) sorts first, as in Rust's total order.
    out.sort(key=lambda r: (0 if r[3] != r[3] else 1, -r[3] if r[3] == r[3] else 0, r[0]))
    print("carrier name flights departed avg delay")
    for carrier, n, departed, avg in out:
        print(f"{carrier} {n} {departed} {avg:.2f}")


def rdd_job(spark, path, _top):
    lines = spark.sparkContext.textFile(path)
    header = lines.first()
    names = header.split(",")
    carrier, delay = names.index("carrier"), names.index("dep_delay")

    def totals(line):
        f = line.split(",")
        d = f[delay]
        if d == "NA" or d == "":
            return f[carrier], (1, 0, 0.0)
        return f[carrier], (1, 1, float(d))

    per_carrier = (lines.filter(lambda l: l != header)
                   .map(totals)
                   .reduceByKey(lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2]))
                   .collect())
    print_answer([(c, n, d, s) for c, (n, d, s) in per_carrier])


def df_job(spark, path, _top):
    from pyspark.sql import functions as F

    # An explicit schema: no pass over the data to infer types.
    schema = ("year INT, month INT, day INT, dep_time INT, sched_dep_time INT, dep_delay DOUBLE, "
              "arr_time INT, sched_arr_time INT, arr_delay DOUBLE, carrier STRING, flight INT, "
              "tailnum STRING, origin STRING, dest STRING, air_time DOUBLE, distance DOUBLE, "
              "hour INT, minute INT, time_hour STRING")
    flights = spark.read.csv(path, header=True, schema=schema, nullValue="NA")
    rows = (flights.groupBy("carrier")
            .agg(F.count("*").alias("n"), F.count("dep_delay").alias("departed"),
                 F.sum("dep_delay").alias("total"))
            .collect())
    print_answer([(r["carrier"], r["n"], r["departed"], r["total"] or 0.0) for r in rows])


if __name__ == "__main__":
    main("flights", "average departure delay per carrier", rdd_job, df_job)
