//! One module per feature; each exposes its handlers to [`crate::router`].

pub mod admin_identity;
pub mod admin_instruments;
pub mod auth;
pub mod health;
pub mod instruments;
pub mod wallet;
