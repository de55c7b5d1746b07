//! Generated web-server access logs in Apache common log format, shaped like the NASA-HTTP logs
//! of July and August 1995 that the classic Spark log-analysis exercises use: a few hosts make
//! most requests, a few resources are requested by most hosts, a small share of lines is
//! malformed (empty, cut short, garbage, bad fields) and must be counted and skipped.
//!
//! The output depends only on the size asked for (a fixed seed), so every engine reads the same
//! bytes in every run.

use std::io::{BufWriter, Write};
use std::path::Path;

/// A seeded linear congruential generator: tiny, deterministic and good enough for test data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 16
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() & ((1 << 48) - 1)) as f64 / (1u64 << 48) as f64
    }

    /// An index below `n`, skewed towards small indices (the cube of a uniform value).
    fn skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((u * u * u) * n as f64) as usize % n
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const MONTHS: [(&str, u32); 2] = [("Jul", 31), ("Aug", 31)];

fn hosts() -> Vec<String> {
    let names = ["piweba", "www-d", "ix-dc", "port", "news", "gateway", "dialup", "slip"];
    let domains = ["prodigy.com", "aol.com", "netcom.com", "compuserve.com", "ksc.nasa.gov"];
    (0..25_000u64)
        .map(|i| match i % 4 {
            0 => format!("199.{}.{}.{}", 72 + i % 50, (i / 50) % 256, (i * 7) % 251 + 1),
            _ => format!(
                "{}{}y.{}",
                names[(i % 8) as usize],
                i / 8 % 1000,
                domains[((i / 3) % 5) as usize]
            ),
        })
        .collect()
}

fn resources() -> Vec<String> {
    let kinds = [
        "/images/{}.gif",
        "/shuttle/missions/sts-{}/mission-sts-{}.html",
        "/history/apollo/apollo-{}/",
        "/shuttle/countdown/video/livevideo-{}.jpeg",
        "/cgi-bin/imagemap/countdown?{},{}",
        "/software/winvn/winvn-{}.html",
    ];
    (0..4_000usize)
        .map(|i| kinds[i % kinds.len()].replace("{}", &(i / kinds.len()).to_string()))
        .collect()
}

/// Write about `size` bytes of log lines to `path`; returns (lines, bytes).
pub fn generate(path: &Path, size: u64) -> anyhow::Result<(u64, u64)> {
    let (hosts, resources) = (hosts(), resources());
    let mut rng = Lcg(0x0109_1995);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let (mut written, mut lines) = (0u64, 0u64);
    let mut line = String::with_capacity(256);
    while written < size {
        line.clear();
        let host = &hosts[rng.skewed(hosts.len())];
        // Days follow a skewed pattern too, so that one day clearly serves the most bytes.
        let day = rng.skewed(62);
        let (month, day) = if day < 31 { (MONTHS[0].0, day + 1) } else { (MONTHS[1].0, day - 30) };
        let (h, m, s) = (rng.below(24), rng.below(60), rng.below(60));
        let method = match rng.below(100) {
            0..=96 => "GET",
            97..=98 => "HEAD",
            _ => "POST",
        };
        let path = &resources[rng.skewed(resources.len())];
        let protocol = if rng.below(50) == 0 { "" } else { " HTTP/1.0" };
        let status = match rng.below(1000) {
            0..=879 => 200,
            880..=939 => 304,
            940..=979 => 302,
            980..=994 => 404,
            _ => 500,
        };
        let bytes = match status {
            200 => (rng.unit().powi(4) * 2_000_000.0) as u64 + 100,
            302 => rng.below(1000),
            _ => u64::MAX,
        };
        let bytes = if bytes == u64::MAX { "-".to_string() } else { bytes.to_string() };
        use std::fmt::Write as _;
        let _ = write!(
            line,
            "{host} - - [{day:02}/{month}/1995:{h:02}:{m:02}:{s:02} -0400] \"{method} {path}{protocol}\" {status} {bytes}"
        );
        // About 0.5% of lines are malformed, in several ways.
        match rng.below(1000) {
            0 => line.clear(),
            1 => {
                let cut = rng.below(line.len() as u64) as usize;
                line.truncate(cut);
            }
            2 => {
                line.clear();
                let _ = write!(line, "{host} sent an invalid request");
            }
            3 => line = line.replace(" -0400]", "]"),
            4 => line.push_str(" trailing"),
            _ => {}
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        lines += 1;
    }
    out.flush()?;
    Ok((lines, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_except_a_small_malformed_share() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("access.log");
        let (lines, bytes) = generate(&path, 2 << 20).expect("generates");
        let text = std::fs::read_to_string(&path).expect("readable");
        assert_eq!(text.len() as u64, bytes);
        assert_eq!(text.lines().count() as u64, lines);
        let malformed = text.lines().filter(|l| weblog::parse(l).is_none()).count() as f64;
        let share = malformed / lines as f64;
        assert!((0.001..0.01).contains(&share), "malformed share {share}");
        // Deterministic: the same size gives the same bytes.
        let again = dir.path().join("again.log");
        generate(&again, 2 << 20).expect("generates");
        assert_eq!(std::fs::read(&again).expect("readable"), text.as_bytes());
    }
}
