//! Creating admin API keys: mint a secret, store only its hash.

use bourse_auth::admin_key::{self, AdminScope};
use bourse_store::{AdminKeyRecord, Store};
use time::OffsetDateTime;

/// Creates a key with `scopes` (each checked) and returns its record and the secret,
/// which exists nowhere else afterwards.
pub async fn create(
    store: &Store,
    name: &str,
    scopes: &[String],
    now: OffsetDateTime,
) -> anyhow::Result<(AdminKeyRecord, String)> {
    let name = name.trim();
    anyhow::ensure!(
        (1..=100).contains(&name.len()) && !name.chars().any(char::is_control),
        "key `name`: 1 to 100 printable characters"
    );
    let mut checked: Vec<String> = scopes
        .iter()
        .map(|s| AdminScope::parse(s).map(|s| s.as_str().to_owned()))
        .collect::<Result<_, _>>()?;
    checked.sort();
    checked.dedup();
    let minted = admin_key::mint();
    let record = AdminKeyRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        hint: minted.hint.clone(),
        key_hash: minted.hash.clone(),
        scopes: checked,
        created_at: now,
        revoked_at: None,
        expires_at: None,
        allowed_cidrs: Vec::new(),
        last_used_at: None,
    };
    store.insert_admin_key(&record).await?;
    Ok((record, minted.secret))
}
