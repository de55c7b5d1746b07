//! The engagement example's shared parts: the telemetry-like pings it reads (a deterministic
//! generator, so that the data is shipped as code), and how one ping line is read.
//!
//! A ping is one line `client,date,os,country,channel`: a client id, a submission date
//! (`YYYYMMDD`, within a 28-day window), and the three segments the engagement ratio is
//! computed for.

/// Days in the window (Mozilla's MAU: clients active in the last 28 days).
pub const DAYS: u32 = 28;

const OSES: [&str; 4] = ["Windows_NT", "Darwin", "Linux", "Android"];
const COUNTRIES: [&str; 6] = ["US", "DE", "FR", "IN", "BR", "JP"];
const CHANNELS: [&str; 3] = ["release", "beta", "nightly"];

/// One ping, borrowed from its line.
#[derive(Debug, PartialEq, Eq)]
pub struct Ping<'a> {
    /// The client's id.
    pub client: &'a str,
    /// The day within the window, from 0.
    pub day: u32,
    /// The segments: operating system, country, channel.
    pub segments: [&'a str; 3],
}

/// The names of the three segments, in the order of [`Ping::segments`].
pub const SEGMENTS: [&str; 3] = ["os", "country", "channel"];

/// Read one ping line; `None` if it is not one.
pub fn parse(line: &str) -> Option<Ping<'_>> {
    let mut fields = line.split(',');
    let client = fields.next()?;
    let date = fields.next()?;
    let segments = [fields.next()?, fields.next()?, fields.next()?];
    if fields.next().is_some() || client.is_empty() || date.len() != 8 {
        return None;
    }
    let day: u32 = date.parse().ok()?;
    let day = day.checked_sub(20_260_201).filter(|d| *d < DAYS)?;
    Some(Ping { client, day, segments })
}

/// A small, fixed generator (SplitMix64) for the pings.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The ping lines of client number `client` (the same for the same number): a client keeps its
/// segments, and is active on some days of the window — heavy users most days, light users a
/// few — sending one to three pings on each.
pub fn client_pings(client: u64) -> Vec<String> {
    let mut r = Mix(client.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let os = OSES[r.below(OSES.len() as u64) as usize];
    let country = COUNTRIES[r.below(COUNTRIES.len() as u64) as usize];
    let channel = CHANNELS[r.below(CHANNELS.len() as u64) as usize];
    // Activity per day, in percent: 5 to 65 on Windows, 10 points more for each later OS.
    let bias = 10 * OSES.iter().position(|o| *o == os).unwrap_or(0) as u64;
    let activity = 5 + r.below(61) + bias;
    let mut lines = Vec::new();
    for day in 0..DAYS {
        if r.below(100) < activity {
            for _ in 0..1 + r.below(3) {
                let date = 20_260_201 + day;
                lines.push(format!("c{client:08x},{date},{os},{country},{channel}"));
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pings_parse_and_repeat() {
        let lines = client_pings(42);
        assert!(!lines.is_empty());
        assert_eq!(lines, client_pings(42));
        for line in &lines {
            let ping = parse(line).unwrap();
            assert_eq!(ping.client, "c0000002a");
            assert!(ping.day < DAYS);
        }
        assert_eq!(parse("c1,20260229,Linux,US,beta"), None, "outside the window");
        assert_eq!(parse("c1,20260201,Linux,US"), None);
        assert_eq!(parse("c1,2026020x,Linux,US,beta"), None);
    }
}
