//! Signing keys: newest first, retirement keeps them for verification, blob rotation.

use bourse_store::{SigningKeyRecord, Store, StoreError};

use crate::fixtures::at;

on_both_backends!(
    retiring_keeps_only_the_new_key_signing,
    key_blobs_are_replaced_only_if_unchanged,
);

fn key(kid: &str, created: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        private_enc: format!("sealed-{kid}").into_bytes(),
        public_jwk: format!(r#"{{"kty":"OKP","crv":"Ed25519","kid":"{kid}","x":"AAAA"}}"#),
        created_at: at(created),
        retired_at: None,
        expires_at: None,
    }
}

async fn retiring_keeps_only_the_new_key_signing(store: &Store) {
    store.migrate().await.unwrap();
    let k1 = key("k1", 100);
    let k2 = key("k2", 200);
    store.insert_signing_key(&k1).await.unwrap();
    store.insert_signing_key(&k2).await.unwrap();
    assert!(matches!(
        store.insert_signing_key(&k1).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.list_signing_keys().await.unwrap(),
        [k2.clone(), k1.clone()]
    );

    assert_eq!(
        store
            .retire_signing_keys_except("k2", at(300), at(900))
            .await
            .unwrap(),
        Some(1)
    );
    let retired_k1 = SigningKeyRecord {
        retired_at: Some(at(300)),
        expires_at: Some(at(900)),
        ..k1
    };
    assert_eq!(
        store.list_signing_keys().await.unwrap(),
        [k2.clone(), retired_k1.clone()]
    );
    // Already retired keys keep their times.
    let k3 = key("k3", 400);
    store.insert_signing_key(&k3).await.unwrap();
    assert_eq!(
        store
            .retire_signing_keys_except("k3", at(500), at(1100))
            .await
            .unwrap(),
        Some(1)
    );
    let keys = store.list_signing_keys().await.unwrap();
    assert_eq!(keys[0], k3);
    assert_eq!(keys[1].retired_at, Some(at(500)));
    assert_eq!(keys[1].expires_at, Some(at(1100)));
    assert_eq!(keys[2], retired_k1);

    // An unknown or retired kid retires nothing: there is always a key left to sign.
    for kid in ["nope", "k1", "k2"] {
        assert_eq!(
            store
                .retire_signing_keys_except(kid, at(600), at(1200))
                .await
                .unwrap(),
            None,
            "{kid}"
        );
    }
    assert_eq!(store.list_signing_keys().await.unwrap(), keys);
    assert_eq!(
        store
            .retire_signing_keys_except("k3", at(600), at(1200))
            .await
            .unwrap(),
        Some(0)
    );

    let shown = format!("{k3:?}");
    assert!(!shown.contains("sealed-k3") && !shown.contains(&format!("{:?}", k3.private_enc)));
}

async fn key_blobs_are_replaced_only_if_unchanged(store: &Store) {
    store.migrate().await.unwrap();
    let k1 = key("k1", 100);
    store.insert_signing_key(&k1).await.unwrap();
    assert!(
        !store
            .replace_signing_key_blob("k1", b"something else", b"resealed")
            .await
            .unwrap()
    );
    assert!(
        store
            .replace_signing_key_blob("k1", &k1.private_enc, b"resealed")
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_signing_key_blob("nope", &k1.private_enc, b"resealed")
            .await
            .unwrap()
    );
    assert_eq!(
        store.list_signing_keys().await.unwrap(),
        [SigningKeyRecord {
            private_enc: b"resealed".to_vec(),
            ..k1
        }]
    );
}
