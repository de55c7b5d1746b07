#!/usr/bin/env bash
# Set up and run the benchmark suite (not part of CI; at the default size it takes a while):
#   bench/run.sh                         every workload on PySpark RDD and DataFrame, weft run,
#                                        a Weft cluster and native Rust; writes bench/RESULTS.md
#   bench/run.sh --size-mb 64 --runs 1   smaller and quicker (then results are not written
#                                        unless --results PATH is given)
#   bench/run.sh wordcount|cluster|udf … the other benchmarks (weft-bench --help)
# Sets up: the wasm32-wasip1 target, weft and the guests, a Python virtual environment with the
# pinned pyspark (needs python3 and Java 17+).
source "$(dirname "$0")/../scripts/env.sh"
build_all
cargo build --release --locked -p weft-bench
case "${1:-}" in
    wordcount|cluster|udf|help|--help|-h)
        exec "$CARGO_TARGET_DIR/release/weft-bench" "$@" ;;
esac
setup_pyspark
if [ $# -eq 0 ]; then set -- --results "$REPO/bench/RESULTS.md"; fi
exec "$CARGO_TARGET_DIR/release/weft-bench" compare "$@"
