//! Credentials of bourse. Pure functions over secrets: no I/O, no clock (time is always an
//! argument), no database; storage of the derived hashes and sealed blobs belongs to
//! `bourse-store`, and HTTP to `bourse-api`.
//!
//! - [`admin_key`]: API keys of the admin listener.
//! - [`password`]: the policy for new passwords and Argon2id hashing.
//! - [`jwt`]: EdDSA access tokens, their verification and a cache of verified tokens.
//! - [`totp`]: RFC 6238 codes for two-factor, with replay protection.
//! - [`recovery`]: single-use recovery codes for a lost authenticator.
//! - [`secretbox`]: AES-256-GCM encryption at rest bound to table, row and column.
//! - [`opaque`]: random bearer secrets (refresh tokens, MFA challenges) stored as hashes.

#![warn(missing_docs)]

pub mod admin_key;
pub mod jwt;
pub mod opaque;
pub mod password;
pub mod recovery;
pub mod secretbox;
pub mod totp;
