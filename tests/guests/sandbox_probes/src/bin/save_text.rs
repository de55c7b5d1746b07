//! Saves the numbers 1..=N as text into the directory given as argument, in 4 partitions; with a
//! third argument `fail`, one partition panics after the others wrote their parts.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    let n: u32 = args[1].parse().expect("N");
    let numbers = ctx.parallelize((1..=n).collect(), 4);
    if args.get(2).is_some_and(|a| a == "fail") {
        numbers
            .map_with(n, |n, x: u32| if x == *n { panic!("failing on purpose") } else { x })
            .save_as_text_file(&args[0])
    } else {
        numbers.save_as_text_file(&args[0])
    }
}
