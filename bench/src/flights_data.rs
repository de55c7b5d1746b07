//! Flights data at a chosen size: the nycflights13 `flights.csv` (the full file from the shared
//! data folder when it is next to the repository, else the sample bundled with the flights
//! example), its rows repeated until the size is reached, under one header line.

use anyhow::Context as _;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

/// Write about `size` bytes of flights CSV to `out` from `source` (gzipped or plain); returns
/// (data rows, bytes).
pub fn generate(source: &Path, out: &Path, size: u64) -> anyhow::Result<(u64, u64)> {
    let bytes =
        std::fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
    let text = if source.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .with_context(|| format!("cannot gunzip {}", source.display()))?;
        s
    } else {
        String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", source.display()))?
    };
    let (header, body) = text
        .split_once('\n')
        .ok_or_else(|| anyhow::anyhow!("{} has no header line", source.display()))?;
    let rows: Vec<&str> = body.lines().filter(|l| !l.is_empty()).collect();
    anyhow::ensure!(!rows.is_empty(), "{} has no rows", source.display());
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    writeln!(w, "{header}")?;
    let mut written = header.len() as u64 + 1;
    let mut count = 0u64;
    for row in rows.iter().cycle() {
        if written >= size {
            break;
        }
        writeln!(w, "{row}")?;
        written += row.len() as u64 + 1;
        count += 1;
    }
    w.flush()?;
    Ok((count, written))
}
