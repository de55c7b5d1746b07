"""Random `key,value` records sorted by key and written as part files whose concatenation is in
key order, one `key,value` line per record: the PySpark versions of the `sort_records` Weft job.
The benchmark reads the answer back from the files."""

from common import main


def rdd_job(spark, path, _top, output):
    lines = spark.sparkContext.textFile(path)
    header = lines.first()

    def record(line):
        k, v = line.split(",")
        return int(k), int(v)

    (lines.filter(lambda l: l != header)
     .map(record)
     .sortByKey(True)
     .map(lambda kv: f"{kv[0]},{kv[1]}")
     .saveAsTextFile(output))


def df_job(spark, path, _top, output):
    records = spark.read.csv(path, header=True, schema="key LONG, value LONG")
    records.orderBy("key").write.csv(output)


if __name__ == "__main__":
    main("sort", "sort key,value records by key into part files", rdd_job, df_job)
