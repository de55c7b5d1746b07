//! A UDF module: text functions for any job to call by name, and a few that misbehave on
//! purpose (loop, allocate without end, panic, reach for the caller's input).

weft::udf! {
    /// The number of characters of a line.
    fn char_count(line: String) -> u64 {
        line.chars().count() as u64
    }

    /// The line in capitals.
    fn upper(line: String) -> String {
        line.to_uppercase()
    }

    /// Whether a line has more than 20 characters.
    fn is_long(line: String) -> bool {
        line.chars().count() > 20
    }

    /// The line's words.
    fn words(line: String) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    /// A word and its length.
    fn with_len(word: String) -> (String, u32) {
        let n = word.len() as u32;
        (word, n)
    }

    /// Never returns.
    fn spin(x: u64) -> u64 {
        let mut n = x;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }

    /// Allocates until the sandbox's memory runs out.
    fn hog(x: u64) -> u64 {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        loop {
            kept.push(vec![x as u8; 16 << 20]);
            std::hint::black_box(&kept);
        }
    }

    /// Panics.
    fn boom(x: u64) -> u64 {
        panic!("boom on {x}")
    }

    /// Tries to read the calling task's input through the host.
    fn snoop(x: u64) -> u64 {
        #[link(wasm_import_module = "weft")]
        unsafe extern "C" {
            fn input_next(input: u32) -> i64;
        }
        // SAFETY: a host function taking a number; the host refuses it to a UDF.
        x + unsafe { input_next(0) } as u64
    }
}

/// A UDF module needs no `main`; this one has an empty one, to be an ordinary binary crate.
fn main() {}
