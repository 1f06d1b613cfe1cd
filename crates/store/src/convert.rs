//! Column conversions shared by the identity tables: instants as unix seconds, word lists
//! as space-separated text, texts cut to a column's size.

use time::{Duration, OffsetDateTime};

use crate::StoreError;

/// The stored form of an instant: whole unix seconds (any fraction is dropped).
pub(crate) fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// A span as whole seconds, negative spans as zero.
pub(crate) fn seconds(d: Duration) -> i64 {
    d.whole_seconds().max(0)
}

/// The instant stored in `table.column`; `Internal` (logged with the column, never the
/// value) when it is out of range.
pub(crate) fn instant(
    table: &'static str,
    column: &'static str,
    secs: i64,
) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| {
        tracing::error!(table, column, "stored time is out of range");
        StoreError::Internal
    })
}

/// [`instant`] of a nullable column.
pub(crate) fn opt_instant(
    table: &'static str,
    column: &'static str,
    secs: Option<i64>,
) -> Result<Option<OffsetDateTime>, StoreError> {
    secs.map(|s| instant(table, column, s)).transpose()
}

/// `words` joined by single spaces, for a column that [`split_words`] reads back.
///
/// A word that is empty or contains whitespace would not come back as it went in: such
/// a list is refused as `Internal` (a caller bug), logged with the column only.
pub(crate) fn join_words(
    table: &'static str,
    column: &'static str,
    words: &[String],
) -> Result<String, StoreError> {
    if words
        .iter()
        .any(|w| w.is_empty() || w.chars().any(char::is_whitespace))
    {
        tracing::error!(
            table,
            column,
            "refusing to store a word that is empty or has whitespace"
        );
        return Err(StoreError::Internal);
    }
    Ok(words.join(" "))
}

/// The words of a space-separated column (none for an empty text).
pub(crate) fn split_words(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `text` cut to at most `max` characters (never inside a character).
pub(crate) fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_bad_words_are_refused() {
        let words = vec!["pwd".to_owned(), "otp".to_owned()];
        let text = join_words("t", "c", &words).unwrap();
        assert_eq!(text, "pwd otp");
        assert_eq!(split_words(&text), words);
        assert_eq!(split_words(""), Vec::<String>::new());
        assert_eq!(join_words("t", "c", &[]).unwrap(), "");
        for bad in ["", "a b", "a\tb", "\n"] {
            assert!(matches!(
                join_words("t", "c", &[bad.to_owned()]),
                Err(StoreError::Internal)
            ));
        }
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("abc", 5), "abc");
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "abc");
        assert_eq!(truncate_chars("ééé", 2), "éé");
        assert_eq!(truncate_chars("", 0), "");
    }

    #[test]
    fn instants_and_spans() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(unix(t + Duration::milliseconds(999)), 1_700_000_000);
        assert_eq!(instant("t", "c", 1_700_000_000).unwrap(), t);
        assert!(matches!(
            instant("t", "c", i64::MAX),
            Err(StoreError::Internal)
        ));
        assert_eq!(opt_instant("t", "c", None).unwrap(), None);
        assert_eq!(seconds(Duration::seconds(-5)), 0);
        assert_eq!(seconds(Duration::milliseconds(2500)), 2);
    }
}
