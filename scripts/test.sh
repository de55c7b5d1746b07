#!/usr/bin/env bash
# Set up and run the whole test suite: unit tests, end-to-end tests with real modules and real
# `weft` processes, the compile-fail test, and a small run of the benchmark.
source "$(dirname "$0")/env.sh"
build_all
echo "==> cargo test (release profile: the same build as the binary, and fast wasm compilation)"
cargo test --release --locked --workspace --exclude word_count --exclude flights --exclude sandbox_probes
