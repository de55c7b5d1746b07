"""Word count, top N words: the PySpark versions of the `word_count` Weft job.

A word is a maximal run of letters, digits and apostrophes, with apostrophes at its ends trimmed,
lowercased; the Weft job (and its native baseline) use the same definition.
"""

import re

from common import main

# Python's \w is letters, digits and underscore: exclude the underscore.
SPLIT = re.compile(r"(?:[^\w']|_)+")


def words(line):
    out = []
    for token in SPLIT.split(line):
        token = token.strip("'")
        if token:
            out.append(token.lower())
    return out


def print_answer(total, distinct, top):
    print(f"{total} words, {distinct} distinct")
    for word, n in top:
        print(f"{n} {word}")


def rdd_job(spark, path, n):
    counts = (spark.sparkContext.textFile(path)
              .flatMap(words)
              .map(lambda w: (w, 1))
              .reduceByKey(lambda a, b: a + b)
              .cache())
    total = counts.map(lambda kv: kv[1]).sum()
    distinct = counts.count()
    top = counts.takeOrdered(n, key=lambda kv: (-kv[1], kv[0]))
    print_answer(total, distinct, top)


def df_job(spark, path, n):
    from pyspark.sql import functions as F

    words_df = (spark.read.text(path)
                .select(F.explode(F.split(F.col("value"), r"[^\p{L}\p{N}']+")).alias("w"))
                .select(F.lower(F.regexp_replace("w", r"^'+|'+$", "")).alias("word"))
                .where(F.col("word") != ""))
    counts = words_df.groupBy("word").count().cache()
    totals = counts.agg(F.sum("count").alias("total"), F.count("*").alias("distinct")).first()
    top = counts.orderBy(F.desc("count"), F.asc("word")).limit(n).collect()
    print_answer(totals["total"], totals["distinct"], [(r["word"], r["count"]) for r in top])


if __name__ == "__main__":
    main("wordcount", "word count, top N words", rdd_job, df_job)
