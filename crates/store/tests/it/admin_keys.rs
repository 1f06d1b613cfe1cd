//! Admin keys: expiry, IP allowlist and last use are stored and read back.

use bourse_store::{AdminKeyRecord, Store, StoreError};

use crate::fixtures::{at, hash};

on_both_backends!(new_fields_round_trip, touching_moves_last_use_forward_only,);

fn admin_key(id: &str) -> AdminKeyRecord {
    AdminKeyRecord {
        id: id.to_owned(),
        name: "ops".to_owned(),
        hint: "bak_1234".to_owned(),
        key_hash: hash(id),
        scopes: vec!["instruments:write".to_owned(), "users:write".to_owned()],
        created_at: at(0),
        revoked_at: None,
        expires_at: Some(at(86_400)),
        allowed_cidrs: vec!["10.0.0.0/8".to_owned(), "2001:db8::/32".to_owned()],
        last_used_at: None,
    }
}

async fn new_fields_round_trip(store: &Store) {
    store.migrate().await.unwrap();
    let full = admin_key("k1");
    store.insert_admin_key(&full).await.unwrap();
    assert_eq!(
        store.find_admin_key(&full.key_hash).await.unwrap(),
        Some(full.clone())
    );
    let open = AdminKeyRecord {
        expires_at: None,
        allowed_cidrs: Vec::new(),
        last_used_at: Some(at(5)),
        ..admin_key("k2")
    };
    store.insert_admin_key(&open).await.unwrap();
    assert_eq!(store.list_admin_keys().await.unwrap(), [full, open]);

    let bad = AdminKeyRecord {
        allowed_cidrs: vec!["10.0.0.0/8 192.168.0.0/16".to_owned()],
        ..admin_key("k3")
    };
    assert!(matches!(
        store.insert_admin_key(&bad).await,
        Err(StoreError::Internal)
    ));
    assert_eq!(store.find_admin_key(&bad.key_hash).await.unwrap(), None);
}

async fn touching_moves_last_use_forward_only(store: &Store) {
    store.migrate().await.unwrap();
    let k = admin_key("k1");
    store.insert_admin_key(&k).await.unwrap();
    let last_used = async || {
        store
            .find_admin_key(&k.key_hash)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    assert!(store.touch_admin_key("k1", at(100)).await.unwrap());
    assert_eq!(last_used().await, Some(at(100)));
    assert!(store.touch_admin_key("k1", at(50)).await.unwrap());
    assert_eq!(last_used().await, Some(at(100)));
    assert!(store.touch_admin_key("k1", at(200)).await.unwrap());
    assert_eq!(last_used().await, Some(at(200)));
    assert!(!store.touch_admin_key("nope", at(300)).await.unwrap());
}
