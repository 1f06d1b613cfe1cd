//! Order books and matching (see issue 9).
