//! Did-you-mean for unknown keys, metrics and names: the closest candidate
//! by edit distance (`strsim`), when it is close enough to be a typo.

/// The candidate closest to `word`, if at most about a third of its
/// characters (and at least one) would have to change.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = word.chars().count().div_ceil(3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_word() {
        let keys = ["duration", "rate", "connections", "name"];
        assert_eq!(did_you_mean("durration", keys), Some("duration"));
        assert_eq!(did_you_mean("rat", keys), Some("rate"));
        assert_eq!(did_you_mean("conections", keys), Some("connections"));
        assert_eq!(did_you_mean("colour", keys), None);
        assert_eq!(did_you_mean("x", keys), None);
    }
}
