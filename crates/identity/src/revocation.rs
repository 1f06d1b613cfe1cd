//! Revoked sessions as a deny list for live access tokens.
//!
//! Access tokens are self-contained and live at most ten minutes, so a revoked session's
//! tokens would otherwise keep working until they expire. Each node keeps the ids of
//! sessions revoked within the last token lifetime (a short list), adds its own
//! revocations at once and polls the store for other nodes' revocations.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bourse_store::Store;
use time::{Duration, OffsetDateTime};

use crate::IdentityError;

/// Session ids revoked recently, with when (unix seconds).
#[derive(Debug, Clone, Default)]
pub struct RevokedSessions {
    ids: Arc<RwLock<HashMap<String, i64>>>,
}

impl RevokedSessions {
    /// Whether the session is revoked.
    pub fn contains(&self, sid: &str) -> bool {
        match self.ids.read() {
            Ok(g) => g.contains_key(sid),
            Err(p) => p.into_inner().contains_key(sid),
        }
    }

    /// Adds a revocation made on this node.
    pub fn insert(&self, sid: &str, now: OffsetDateTime) {
        let mut g = match self.ids.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.insert(sid.to_owned(), now.unix_timestamp());
    }

    /// Reloads revocations of the last `token_ttl` (plus a minute of slack) from the store.
    pub async fn refresh(
        &self,
        store: &Store,
        now: OffsetDateTime,
        token_ttl: Duration,
    ) -> Result<(), IdentityError> {
        let since = now - token_ttl - Duration::minutes(1);
        let fresh: HashMap<String, i64> = store
            .revoked_sessions_since(since)
            .await?
            .into_iter()
            .collect();
        let mut g = match self.ids.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        // Keep local entries the store may not show yet (none, in practice: the store is
        // written first), and drop everything older than the window.
        g.retain(|_, at| *at >= since.unix_timestamp());
        g.extend(fresh);
        Ok(())
    }
}
