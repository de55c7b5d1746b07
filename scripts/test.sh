#!/usr/bin/env bash
# Set up and run the whole test suite: unit tests, end-to-end tests with real modules and real
# `weft` processes, and the compile-fail test.
source "$(dirname "$0")/env.sh"
build_all
echo "==> cargo test (release profile: the same build as the binary, and fast wasm compilation)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --release --locked --workspace --exclude word_count --exclude flights --exclude sandbox_probes 2>&1 | tee "$log"
# One line with the totals over every test binary, so the outcome is clear at a glance.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nweft test suite: %d passed, %d failed\n", p, f }' "$log"
