//! The logic of the word-count job as plain functions, so that the same code runs in the job
//! (`main.rs`) and natively in the benchmark that compares the two.

/// The words of a line: maximal runs of alphanumeric characters (apostrophes inside a word are
/// kept, as in "don't"), lowercased.
pub fn words(line: String) -> Vec<String> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Sum of two counts (the `reduce_by_key` function).
pub fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Order word counts for printing: most frequent first, ties alphabetically.
pub fn rank(mut counts: Vec<(String, u64)>) -> Vec<(String, u64)> {
    counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_punctuation_and_lowercases() {
        assert_eq!(
            words("Hello, world! Don't 'quote' me--ok".into()),
            ["hello", "world", "don't", "quote", "me", "ok"]
        );
    }
}
