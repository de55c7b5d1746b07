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
    cargo build --release --locked --target wasm32-wasip1 -p word_count -p flights -p sandbox_probes
}
