//! Credentials of bourse. Pure functions over secrets: no I/O, no clock; storage of
//! the derived hashes belongs to `bourse-store`.

pub mod admin_key;
