//! One module per feature; each exposes its handlers to [`crate::router`].

pub mod admin_instruments;
pub mod health;
pub mod instruments;
