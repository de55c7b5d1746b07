//! The workloads of `weft-bench compare`: what each computes, its input (generated
//! deterministically) and how the engines are pointed at it.
//!
//! 1. `wordcount`: top 100 words of generated text;
//! 2. `weblog`: Apache common-log analysis (requests and bytes per host, busiest day, resource
//!    with the most distinct hosts; malformed lines counted and skipped);
//! 3. `flights`: average departure delay per carrier over nycflights13 rows, repeated to size;
//! 4. `join`: the same flights joined record by record with `airlines.csv`, then the average
//!    delay per airline (the RDD `join`: both sides shuffled by key);
//! 5. `sort`: `sort_by_key` of random `key,value` records (20 M by default), written as sorted
//!    part files. Its answer is read back from the files by [`crate::records::check_sorted`].

use crate::engines::JobSpec;
use std::path::{Path, PathBuf};

/// A workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Word count, top 100 words.
    Wordcount,
    /// Web-server log analysis.
    Weblog,
    /// Average departure delay per carrier.
    Flights,
    /// Every flight joined with its airline, average delay per airline.
    Join,
    /// Sort records by key into sorted part files.
    Sort,
}

/// Where a workload's inputs come from and how big they are.
pub struct Inputs<'a> {
    /// Bytes of text, log or CSV for the size-driven workloads.
    pub size: u64,
    /// Records of the sort workload.
    pub sort_records: u64,
    /// nycflights13 rows to repeat.
    pub flights_source: &'a Path,
    /// The airlines file joined with them.
    pub airlines_source: &'a Path,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 5] =
        [Workload::Wordcount, Workload::Weblog, Workload::Flights, Workload::Join, Workload::Sort];

    /// Its name: the native subcommand's, the PySpark script's, the report's.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Wordcount => "wordcount",
            Workload::Weblog => "weblog",
            Workload::Flights => "flights",
            Workload::Join => "join",
            Workload::Sort => "sort",
        }
    }

    /// What it computes, for the report.
    pub fn description(self) -> &'static str {
        match self {
            Workload::Wordcount => "word count, top 100 words",
            Workload::Weblog => {
                "access-log analysis: requests and bytes per host (top 10), busiest day, resource \
                 with the most distinct hosts; malformed lines counted and skipped"
            }
            Workload::Flights => "average departure delay per carrier, NA skipped",
            Workload::Join => {
                "every flight joined with its airline by carrier code (flights ⋈ airlines, both \
                 sides shuffled in the RDD versions), then average departure delay per airline"
            }
            Workload::Sort => {
                "sort_by_key of random 63-bit keys with a value each, written as part files whose \
                 concatenation is in key order"
            }
        }
    }

    /// Whether the "no slower than the native loop" target applies. It was set for the
    /// first three workloads; for the join and the sort the native loop is shown for reference.
    pub fn native_target(self) -> bool {
        matches!(self, Workload::Wordcount | Workload::Weblog | Workload::Flights)
    }

    /// How the engines run it.
    pub fn spec(self) -> JobSpec<'static> {
        let (module, file, top) = match self {
            Workload::Wordcount => ("word_count", "corpus.txt", Some(100)),
            Workload::Weblog => ("weblog", "access.log", Some(10)),
            Workload::Flights => ("flights", "flights.csv", None),
            Workload::Join => ("flights_join", "flights.csv", None),
            Workload::Sort => ("sort_records", "records.csv", None),
        };
        let env = match self {
            Workload::Weblog => vec![("WEBLOG_PATTERN", weblog::PATTERN.to_string())],
            _ => Vec::new(),
        };
        let (extra, output) = match self {
            Workload::Join => (vec!["airlines.csv"], None),
            Workload::Sort => (vec![SORT_OUTPUT], Some(SORT_OUTPUT)),
            _ => (Vec::new(), None),
        };
        JobSpec { workload: self.name(), module, file, top, env, extra, output }
    }

    /// Generate the input into `data`; describes it.
    pub fn generate(self, data: &Path, inputs: &Inputs) -> anyhow::Result<String> {
        let path = data.join(self.spec().file);
        let mb = |b: u64| b as f64 / 1e6;
        Ok(match self {
            Workload::Wordcount => {
                let (lines, bytes) = crate::corpus::generate(&path, inputs.size)?;
                format!("{:.0} MB of generated text, {lines} lines", mb(bytes))
            }
            Workload::Weblog => {
                let (lines, bytes) = crate::logs::generate(&path, inputs.size)?;
                format!("{:.0} MB of generated access log, {lines} lines", mb(bytes))
            }
            Workload::Flights | Workload::Join => {
                let source = inputs.flights_source;
                let (rows, bytes) = crate::flights_data::generate(source, &path, inputs.size)?;
                let mut text = format!(
                    "{:.0} MB of CSV, {rows} rows repeated from {}",
                    mb(bytes),
                    source_name(source)
                );
                if self == Workload::Join {
                    let airlines = data.join("airlines.csv");
                    std::fs::copy(inputs.airlines_source, &airlines).map_err(|e| {
                        anyhow::anyhow!("cannot copy {}: {e}", inputs.airlines_source.display())
                    })?;
                    let rows = std::fs::read_to_string(&airlines)?.lines().count() - 1;
                    text.push_str(&format!(", joined with {rows} airlines"));
                }
                text
            }
            Workload::Sort => {
                let bytes = crate::records::generate(&path, inputs.sort_records)?;
                format!(
                    "{} records of random keys ({:.0} MB of CSV), sorted into as many parts as \
                     each engine reads the input in",
                    inputs.sort_records,
                    mb(bytes)
                )
            }
        })
    }
}

/// The sort's output directory, inside the data directory; emptied before each run.
const SORT_OUTPUT: &str = "sorted";

/// The airlines file: the shared data folder's when it is next to the repository, else the copy
/// bundled with the flights example (the same 16 carriers).
pub fn airlines_csv() -> PathBuf {
    let repo = weft_tests::repo_root();
    let shared = repo.join("../shared/data/nycflights13/airlines.csv");
    if shared.exists() { shared } else { repo.join("guest-examples/flights/data/airlines.csv") }
}

fn source_name(p: &Path) -> String {
    p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
}
