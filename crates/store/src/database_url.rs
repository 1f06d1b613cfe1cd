//! Recognising database URLs, and printing them without secrets.

use crate::{Backend, StoreError};

/// Which backend `url` names, or `BadUrl` (with the URL redacted) when it names neither.
pub(crate) fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Backend::Postgres);
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(bad_url(url, "a SQLite URL needs a file path"));
        }
        return Ok(Backend::Sqlite);
    }
    Err(bad_url(
        url,
        "expected sqlite://PATH, sqlite:PATH, postgres:// or postgresql://",
    ))
}

/// A `BadUrl` error naming the redacted URL and what is wrong with it.
pub(crate) fn bad_url(url: &str, why: &str) -> StoreError {
    StoreError::BadUrl(format!("{} ({why})", redact(url)))
}

/// `url` with the user info (`user:password@`) and the query string (which may carry
/// `password=`) replaced by `***`, safe to log or to show.
///
/// Works on strings that are not valid URLs too: anything before the last `@` of the
/// authority is treated as user info.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => match url.find(':') {
            Some(i) => url.split_at(i + 1),
            None => ("", url),
        },
    };
    let (before_query, has_query) = match rest.find(['?', '#']) {
        Some(i) => (&rest[..i], rest[i..].starts_with('?')),
        None => (rest, false),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str("***");
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    // A path never holds credentials in the URLs we accept, but an `@` in it means the
    // string is malformed and the part before it may be a password: hide it.
    match path.rfind('@') {
        Some(at) => {
            out.push_str("/***");
            out.push_str(&path[at..]);
        }
        None => out.push_str(path),
    }
    if has_query {
        out.push_str("?***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_supported_schemes() {
        for (url, backend) in [
            ("sqlite://data/bourse.db", Backend::Sqlite),
            ("sqlite:data/bourse.db", Backend::Sqlite),
            ("sqlite:///var/lib/bourse/bourse.db", Backend::Sqlite),
            ("sqlite::memory:", Backend::Sqlite),
            ("postgres://u:p@localhost/bourse", Backend::Postgres),
            ("postgresql://localhost:5433/bourse", Backend::Postgres),
        ] {
            assert_eq!(backend_of(url).ok(), Some(backend), "{url}");
        }
    }

    #[test]
    fn refuses_other_schemes_without_echoing_secrets() {
        for url in [
            "mysql://root:hunter2@db/bourse",
            "POSTGRES://u:hunter2@h/db",
            "sqlite://",
            "sqlite:?mode=rwc&password=hunter2",
            "http://x/?password=hunter2",
            "user:hunter2@host",
        ] {
            match backend_of(url) {
                Err(StoreError::BadUrl(msg)) => assert!(!msg.contains("hunter2"), "{msg}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn redacts_user_info_and_query() {
        assert_eq!(
            redact("postgres://bourse:s3cret@db.internal:5432/bourse?sslmode=require"),
            "postgres://***@db.internal:5432/bourse?***"
        );
        assert_eq!(redact("postgres://db/bourse"), "postgres://db/bourse");
        assert_eq!(redact("mysql://root:p@ss@h/db"), "mysql://***@h/db");
        assert_eq!(redact("sqlite:data/bourse.db"), "sqlite:data/bourse.db");
        assert_eq!(redact("nonsense"), "nonsense");
        assert_eq!(redact("x:a/b:pw@host"), "x:a/***@host");
    }
}
