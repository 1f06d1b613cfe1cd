//! bourse.
