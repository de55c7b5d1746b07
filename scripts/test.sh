#!/usr/bin/env bash
# Set up and run the whole test suite: unit tests, end-to-end tests with real modules and real
# `weft` processes, and the compile-fail test.
source "$(dirname "$0")/env.sh"
build_all
# The benchmark suite's small-size check runs the PySpark engines too. CI must have them; on a
# machine without Java or python3 that check leaves them out and says so.
if [ "${CI:-}" = "true" ]; then
    setup_pyspark
elif command -v java >/dev/null && command -v python3 >/dev/null; then
    setup_pyspark || echo "warning: PySpark set-up failed; the benchmark check will leave it out"
fi
echo "==> cargo test (release profile: the same build as the binary, and fast wasm compilation)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
{
    cargo test --release --locked --workspace --exclude word_count --exclude flights --exclude weblog --exclude engagement --exclude sandbox_probes --exclude rdd_ops --exclude udf_probes --exclude bench_jobs &&
        # The examples' shared logic (the guests' binaries only build for wasm32-wasip1).
        cargo test --release --locked -p word_count -p weblog -p engagement --lib
} 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One line with the totals over every test binary, so the outcome is clear at a glance, also when
# a test failed.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nweft test suite: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
