//! The logic of the web-log job as plain functions, so that the same code runs in the job
//! (`main.rs`) and natively in the benchmark that compares engines.
//!
//! A line is in Apache common log format:
//!
//! ```text
//! host ident user [dd/Mon/yyyy:HH:MM:SS +zzzz] "METHOD PATH PROTOCOL" STATUS BYTES
//! ```
//!
//! The protocol is optional (HTTP/0.9 requests have none) and `BYTES` is `-` when nothing was
//! sent. The grammar is exactly that of the regular expression [`PATTERN`], which the PySpark
//! versions of the job use: both must classify every line the same way, and the benchmark checks
//! that they do. A hand-written parser rather than a regex engine keeps the guest module small and
//! the per-line cost low.

/// The accepted lines, as a regular expression (Python and Java syntax), anchored at both ends.
/// Groups: 1 host, 2 day, 3 method, 4 path, 5 protocol (optional), 6 status, 7 bytes.
pub const PATTERN: &str = r#"^([^ ]+) [^ ]+ [^ ]+ \[([0-9]{2}/[A-Za-z]{3}/[0-9]{4}):[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}\] "([^ "]+) ([^ "]+)( [^ "]+)?" ([0-9]{3}) ([0-9]{1,18}|-)$"#;

/// One parsed request; the strings borrow from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The requesting host (name or address).
    pub host: &'a str,
    /// The day, as written in the log (`01/Jul/1995`).
    pub day: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The requested resource.
    pub path: &'a str,
    /// The response status.
    pub status: u16,
    /// Bytes sent (0 for `-`).
    pub bytes: u64,
}

/// Parse a line; `None` when it does not match [`PATTERN`] (a malformed line).
pub fn parse(line: &str) -> Option<Request<'_>> {
    let mut s = Cursor { line, pos: 0 };
    let host = s.token(b" ")?;
    s.bytes(b" ")?;
    s.token(b" ")?;
    s.bytes(b" ")?;
    s.token(b" ")?;
    s.bytes(b" [")?;
    let day_start = s.pos;
    s.run(2, u8::is_ascii_digit)?;
    s.bytes(b"/")?;
    s.run(3, u8::is_ascii_alphabetic)?;
    s.bytes(b"/")?;
    s.run(4, u8::is_ascii_digit)?;
    let day = &line[day_start..s.pos];
    for _ in 0..3 {
        s.bytes(b":")?;
        s.run(2, u8::is_ascii_digit)?;
    }
    s.bytes(b" ")?;
    if s.bytes(b"+").is_none() {
        s.bytes(b"-")?;
    }
    s.run(4, u8::is_ascii_digit)?;
    s.bytes(b"] \"")?;
    let method = s.token(b" \"")?;
    s.bytes(b" ")?;
    let path = s.token(b" \"")?;
    if s.bytes(b" ").is_some() {
        s.token(b" \"")?;
    }
    s.bytes(b"\" ")?;
    let status = s.run(3, u8::is_ascii_digit)?.parse().ok()?;
    s.bytes(b" ")?;
    let rest = &line[s.pos..];
    let bytes = if rest == "-" {
        0
    } else if (1..=18).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_digit()) {
        // At most 18 digits, so that every engine's 64-bit integer holds the size.
        rest.parse().ok()?
    } else {
        return None;
    };
    Some(Request { host, day, method, path, status, bytes })
}

/// A position in the line. Every cut is next to an ASCII byte, so slicing never splits a
/// character.
struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.line.as_bytes()[self.pos..]
    }

    /// A non-empty run of bytes none of which is in `stop`.
    fn token(&mut self, stop: &[u8]) -> Option<&'a str> {
        let rest = self.rest();
        let len = rest.iter().position(|b| stop.contains(b)).unwrap_or(rest.len());
        self.take(len)
    }

    /// The bytes `expected`, exactly.
    fn bytes(&mut self, expected: &[u8]) -> Option<()> {
        self.rest().starts_with(expected).then(|| self.pos += expected.len())
    }

    /// Exactly `n` bytes of `class`.
    fn run(&mut self, n: usize, class: fn(&u8) -> bool) -> Option<&'a str> {
        let rest = self.rest();
        (rest.len() >= n && rest[..n].iter().all(class)).then_some(())?;
        self.take(n)
    }

    fn take(&mut self, len: usize) -> Option<&'a str> {
        if len == 0 {
            return None;
        }
        let token = &self.line[self.pos..self.pos + len];
        self.pos += len;
        Some(token)
    }
}

/// Per-host totals: requests and bytes.
pub type HostTotals = (u64, u64);

/// Sum of two per-host totals.
pub fn add_totals(a: HostTotals, b: HostTotals) -> HostTotals {
    (a.0 + b.0, a.1 + b.1)
}

/// The `n` hosts with the most requests, ties broken by host name.
pub fn top_hosts(mut hosts: Vec<(String, HostTotals)>, n: usize) -> Vec<(String, HostTotals)> {
    hosts.sort_unstable_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    hosts.truncate(n);
    hosts
}

/// The entry with the largest value, ties broken by the smallest key.
pub fn largest(entries: Vec<(String, u64)>) -> Option<(String, u64)> {
    entries.into_iter().min_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"in24.inetnebr.com - - [01/Aug/1995:00:00:01 -0400] "GET /shuttle/missions/sts-68/news/sts-68-mcc-05.txt HTTP/1.0" 200 1839"#;

    #[test]
    fn parses_a_common_log_line() {
        let r = parse(GOOD).expect("valid line");
        assert_eq!(r.host, "in24.inetnebr.com");
        assert_eq!(r.day, "01/Aug/1995");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/shuttle/missions/sts-68/news/sts-68-mcc-05.txt");
        assert_eq!((r.status, r.bytes), (200, 1839));
    }

    #[test]
    fn optional_protocol_and_missing_bytes() {
        let r = parse(r#"h - - [01/Jul/1995:10:11:12 +0000] "GET /" 304 -"#).expect("valid");
        assert_eq!((r.path, r.status, r.bytes), ("/", 304, 0));
    }

    #[test]
    fn refuses_malformed_lines() {
        let bad = [
            "",
            "garbage",
            r#"h - - [01/Jul/1995:10:11:12 +0000] "GET /" 304"#,
            r#"h - - [01/Jul/1995:10:11:12 +0000] "GET /" 304 12x"#,
            r#"h - - [01/Jul/1995:10:11:12 +0000] "GET / HTTP/1.0 x" 200 1"#,
            r#"h - - [1/Jul/1995:10:11:12 +0000] "GET /" 200 1"#,
            r#"h - - [01/Jul/1995:10:11:12 0000] "GET /" 200 1"#,
            r#"h - - [01/Jul/1995:10:11:12 +0000] "GET" 200 1"#,
            r#"h  - - [01/Jul/1995:10:11:12 +0000] "GET /" 200 1"#,
            r#"h - - [01/Jul/1995:10:11:12 +0000] "GET /" 2000 1"#,
            r#"h - - [01/Jul/1995:10:11:12 +0000] "GET /" 200 99999999999999999999999"#,
        ];
        for line in bad {
            assert_eq!(parse(line), None, "{line:?} must be malformed");
        }
    }
}
