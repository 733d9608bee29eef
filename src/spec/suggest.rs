//! "Did you mean" suggestions and short quotes for messages.

/// `s` cut to `max` characters, with `...` when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

/// The allowed word closest to `word`, when it is close enough to be a typo.
pub(crate) fn suggest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    allowed
        .iter()
        .map(|a| (distance(&word, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4) && *d < a.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(suggest("imag", &["image", "vcpus"]), Some("image"));
        assert_eq!(suggest("memroy", &["memory", "timeout"]), Some("memory"));
        assert_eq!(suggest("Strategy", &["strategy"]), Some("strategy"));
        assert_eq!(suggest("zzz", &["image", "vcpus"]), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
