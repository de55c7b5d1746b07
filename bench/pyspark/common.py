"""What every PySpark benchmark job shares: argument parsing, the Spark session, timing.

Each job is run as its own process by `weft-bench compare`. It prints its answer on stdout in
the layout of the Weft job, so that answers can be compared, and the job's own time (Spark
session start-up excluded) on stderr as `job_seconds=...`.
"""

import argparse
import sys
import time


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--api", choices=["rdd", "df"], required=True,
                   help="rdd: RDD API with Python lambdas; df: DataFrame API")
    p.add_argument("--top", type=int, default=10, help="how many top entries to print")
    p.add_argument("--cores", type=int, default=2, help="local[N]")
    p.add_argument("path", help="input file")
    p.add_argument("extra", nargs="*", help="more paths the job takes (a lookup file, an output)")
    return p.parse_args()


def session(name, cores):
    """A local Spark session with `cores` threads, the UI off and enough driver memory for the
    default benchmark sizes (the machine has far more; Spark's default of 1 GiB would make it spill
    or fail, which is not the comparison we want)."""
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(f"local[{cores}]").appName(name)
             .config("spark.ui.enabled", "false")
             .config("spark.driver.memory", "4g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main(name, description, rdd_job, df_job):
    """Parse the arguments, start the session, run `rdd_job` or `df_job` (called with the session,
    the input path, the top-N count and the extra paths), report the job's wall time on stderr,
    stop."""
    args = parse_args(description)
    spark = session(f"{name}-{args.api}", args.cores)
    job = rdd_job if args.api == "rdd" else df_job
    started = time.perf_counter()
    job(spark, args.path, args.top, *args.extra)
    print(f"job_seconds={time.perf_counter() - started:.6f}", file=sys.stderr)
    spark.stop()
