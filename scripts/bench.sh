#!/usr/bin/env bash
# Set up and run the word-count benchmark (not part of the test suite). Extra arguments go to
# the benchmark, e.g. `scripts/bench.sh --size-mb 500 --runs 5`.
source "$(dirname "$0")/env.sh"
build_all
cargo build --release --locked -p weft-bench
"$CARGO_TARGET_DIR/release/weft-bench" "$@"
