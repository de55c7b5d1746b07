//! A job that calls the UDFs of `text_udfs` by name: `udf_caller MODULE MODE`.
//!
//! - `text`: `map_udf`, `filter_udf` and `flat_map_udf` over a few lines, printed so that the
//!   test can check them against the same functions computed natively;
//! - `mismatch`, `missing`: bind a function with the wrong types, or one that does not exist;
//! - `spin`, `hog`, `boom`, `snoop`: call a function that misbehaves.

use weft::prelude::*;

/// Lines of text, the same every run.
fn lines() -> Vec<String> {
    (0..2000)
        .map(|i| match i % 4 {
            0 => format!("line {i} is short"),
            1 => format!("line {i} is quite a bit longer than twenty characters"),
            2 => format!("übung {i} mit umlauten ÄÖÜ"),
            _ => String::new(),
        })
        .collect()
}

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    let (module, mode) = match args.as_slice() {
        [module, mode] => (module.as_str(), mode.as_str()),
        _ => panic!("usage: udf_caller MODULE MODE"),
    };
    let text = ctx.parallelize(lines(), 8);
    match mode {
        "text" => {
            let count = ctx.udf::<String, u64>(module, "char_count")?;
            let upper = ctx.udf::<String, String>(module, "upper")?;
            let long = ctx.udf::<String, bool>(module, "is_long")?;
            let words = ctx.udf::<String, Vec<String>>(module, "words")?;
            let with_len = ctx.udf::<String, (String, u32)>(module, "with_len")?;
            println!("bound {} {}", count.module(), count.function());
            let chars: u64 = text.map_udf(&count).collect()?.iter().sum();
            println!("chars {chars}");
            let shouted = text.map_udf(&upper).filter(|l: &String| !l.is_empty()).collect()?;
            println!("upper {}", shouted.join("|").len());
            println!("upper first {}", shouted[2]);
            println!("long {}", text.filter_udf(&long).count()?);
            let all = text.flat_map_udf(&words);
            println!("words {}", all.count()?);
            let longest = all.map_udf(&with_len).map(|(_, n): (String, u32)| n).max()?;
            println!("longest {}", longest.unwrap_or(0));
        }
        "mismatch" => {
            let count = ctx.udf::<u64, u64>(module, "char_count")?;
            println!("{}", ctx.range(0, 10, 2).map_udf(&count).count()?);
        }
        "missing" => {
            let f = ctx.udf::<String, u64>(module, "char_total")?;
            println!("{}", text.map_udf(&f).count()?);
        }
        "spin" | "hog" | "boom" | "snoop" => {
            let f = ctx.udf::<u64, u64>(module, mode)?;
            println!("{}", ctx.range(0, 100, 2).map_udf(&f).count()?);
        }
        other => panic!("unknown mode {other}"),
    }
    Ok(())
}
