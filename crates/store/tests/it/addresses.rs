//! The withdrawal whitelist on both backends: owner-scoped reads and deletes.

use bourse_store::{AddressRecord, Store, StoreError};

use crate::fixtures::{at, new_user};

on_both_backends!(addresses_are_owner_scoped_unique_and_soft_deleted);

fn entry(id: &str, user_id: &str, address: &str) -> AddressRecord {
    AddressRecord {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        asset: "USDC".into(),
        address: address.to_owned(),
        label: "cold wallet".into(),
        created_at: at(1_000),
        usable_at: at(1_000 + 86_400),
        deleted_at: None,
    }
}

async fn addresses_are_owner_scoped_unique_and_soft_deleted(store: &Store) {
    store.migrate().await.unwrap();
    let alice = new_user(store, "alice@example.com").await;
    let bob = new_user(store, "bob@example.com").await;
    let a1 = entry(
        "01900000-0000-7000-8000-0000000000a1",
        &alice.id,
        "0xabc0000000000000000000000000000000000001",
    );
    store.insert_address(&a1).await.unwrap();
    // The same live address twice for one user: refused.
    let dup = AddressRecord {
        id: "01900000-0000-7000-8000-0000000000a2".into(),
        ..a1.clone()
    };
    assert!(matches!(
        store.insert_address(&dup).await,
        Err(StoreError::Conflict)
    ));
    // Bob may whitelist the same address for himself.
    let b1 = entry("01900000-0000-7000-8000-0000000000b1", &bob.id, &a1.address);
    store.insert_address(&b1).await.unwrap();

    assert_eq!(
        store.list_addresses(&alice.id).await.unwrap(),
        vec![a1.clone()]
    );
    assert_eq!(
        store.get_address(&alice.id, &a1.id).await.unwrap(),
        Some(a1.clone())
    );
    // Bob cannot see or delete Alice's entry.
    assert_eq!(store.get_address(&bob.id, &a1.id).await.unwrap(), None);
    assert!(
        !store
            .delete_address(&bob.id, &a1.id, at(2_000))
            .await
            .unwrap()
    );
    assert_eq!(store.list_addresses(&alice.id).await.unwrap().len(), 1);
    // Alice deletes it; it is gone from reads, and may be added again.
    assert!(
        store
            .delete_address(&alice.id, &a1.id, at(2_000))
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_address(&alice.id, &a1.id, at(2_001))
            .await
            .unwrap()
    );
    assert_eq!(store.get_address(&alice.id, &a1.id).await.unwrap(), None);
    assert!(store.list_addresses(&alice.id).await.unwrap().is_empty());
    store.insert_address(&dup).await.unwrap();
    assert_eq!(store.list_addresses(&bob.id).await.unwrap(), vec![b1]);
}
