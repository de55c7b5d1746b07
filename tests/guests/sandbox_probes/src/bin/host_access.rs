//! Tries to reach the host from the driver and from a closure: files, environment, directories.
//! Prints what it got; the test checks that every attempt got nothing.
use weft::prelude::*;

fn probe(place: &str) -> Vec<String> {
    let passwd = match std::fs::read("/etc/passwd") {
        Ok(bytes) => format!("READ {} bytes", bytes.len()),
        Err(e) => format!("denied ({e})"),
    };
    let cwd = match std::fs::read_dir(".") {
        Ok(entries) => format!("LISTED {} entries", entries.count()),
        Err(e) => format!("denied ({e})"),
    };
    let vars = std::env::vars().count();
    let path = std::env::var("PATH").map_or_else(|_| "unset".to_string(), |p| format!("SET {p}"));
    vec![
        format!("{place} passwd: {passwd}"),
        format!("{place} cwd: {cwd}"),
        format!("{place} env vars: {vars}"),
        format!("{place} PATH: {path}"),
    ]
}

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    for line in probe("driver") {
        println!("{line}");
    }
    let from_task = ctx
        .parallelize(vec!["task".to_string()], 1)
        .flat_map(|place: String| probe(&place))
        .collect()?;
    for line in from_task {
        println!("{line}");
    }
    Ok(())
}
