//! Checking that engines computed the same thing before any of their times is reported.
//!
//! Engines print their answers in the same layout but not the same spacing, so answers are
//! compared token by token (whitespace-separated). Two tokens agree when they are the same text,
//! or when both are numbers with a fractional part that agree to a relative 1e-9: summing floats
//! in a different order (per partition, per engine) may change the last bits.

/// Why two answers differ, for the error message: the first differing line of each.
pub fn difference(expected: &str, actual: &str) -> Option<String> {
    let a: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
    let b: Vec<&str> = actual.lines().filter(|l| !l.trim().is_empty()).collect();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        let same = match (x, y) {
            (Some(x), Some(y)) => lines_agree(x, y),
            _ => false,
        };
        if !same {
            return Some(format!(
                "line {}: expected {:?}, got {:?}",
                i + 1,
                x.unwrap_or("<end of answer>"),
                y.unwrap_or("<end of answer>")
            ));
        }
    }
    None
}

fn lines_agree(x: &str, y: &str) -> bool {
    let (xs, ys): (Vec<&str>, Vec<&str>) =
        (x.split_whitespace().collect(), y.split_whitespace().collect());
    xs.len() == ys.len() && xs.iter().zip(&ys).all(|(a, b)| tokens_agree(a, b))
}

fn tokens_agree(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let fractional = |t: &str| t.contains('.') || t.contains('e') || t.contains('E');
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if fractional(a) || fractional(b) => {
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_does_not_matter() {
        assert_eq!(difference("  12  the\n 3 a\n", "12 the\n3 a"), None);
    }

    #[test]
    fn floats_agree_to_rounding_but_integers_exactly() {
        assert_eq!(difference("AA 12.000000000001", "AA 12.0"), None);
        assert!(difference("AA 12.01", "AA 12.0").is_some());
        assert!(difference("100 words", "101 words").is_some());
    }

    #[test]
    fn missing_or_extra_lines_are_differences() {
        let d = difference("a\nb\n", "a\n").expect("differs");
        assert!(d.contains("line 2") && d.contains("<end of answer>"), "{d}");
        assert!(difference("a\n", "a\nb\n").is_some());
        assert!(difference("x y", "x y z").is_some());
    }
}
