# Shared set-up for the scripts: toolchain target, target directory. Source it, don't run it.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
cd "$REPO"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
    echo "==> installing the wasm32-wasip1 target"
    rustup target add wasm32-wasip1
fi

# Build the host binary and every guest module (examples and test guests).
build_all() {
    echo "==> building weft (release)"
    cargo build --release --locked -p weft-cli
    echo "==> building the guests for wasm32-wasip1"
    # The examples with whole-program optimisation, as we advise for jobs (README): modules half
    # the size and ~10% faster. Only for this build: the host crates keep their profile.
    CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
        cargo build --release --locked --target wasm32-wasip1 -p word_count -p flights -p weblog -p engagement \
        -p bench_jobs
    cargo build --release --locked --target wasm32-wasip1 -p sandbox_probes -p rdd_ops -p udf_probes
}

# A Python virtual environment with the pinned pyspark, for the benchmark's PySpark engines, kept
# outside the clone (like the target directory) so that it is set up once per machine.
# Needs python3 (with venv) and Java 17+; sets WEFT_BENCH_PYTHON.
setup_pyspark() {
    local venv="${WEFT_CACHE:-$HOME/.cache/weft}/bench-venv"
    local req="$REPO/bench/pyspark/requirements.txt"
    if ! command -v java >/dev/null; then
        echo "error: java not found; PySpark needs Java 17 or later" >&2
        return 1
    fi
    if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
        echo "==> setting up $venv (pyspark)"
        # Chained, so that a failure returns non-zero even where `set -e` is off (`f || …`) and the
        # copied requirements, which mark the set-up as done, are only written after success.
        python3 -m venv "$venv" &&
            "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" &&
            cp "$req" "$venv/requirements.txt" || return 1
    fi
    export WEFT_BENCH_PYTHON="$venv/bin/python"
}
