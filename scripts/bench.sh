#!/usr/bin/env bash
# Set up and run a benchmark (not part of the test suite):
#   scripts/bench.sh                                  word count: weft run vs native (default)
#   scripts/bench.sh wordcount --size-mb 500 --runs 5
#   scripts/bench.sh cluster                          coordinator + 2 nodes vs weft run, shuffle
#                                                     throughput, tiny-job latency
source "$(dirname "$0")/env.sh"
build_all
cargo build --release --locked -p weft-bench
if [ $# -eq 0 ]; then set -- wordcount; fi
"$CARGO_TARGET_DIR/release/weft-bench" "$@"
