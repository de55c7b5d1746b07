//! Counts the lines of the path given as argument; used to probe data-directory confinement.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    let n = ctx.text_file(&args[0]).count()?;
    println!("{n} lines");
    Ok(())
}
