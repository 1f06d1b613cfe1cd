//! User accounts: insert, look up, unique email, password and status changes, paging.

use bourse_store::{Store, StoreError, UserRecord, UserStatus};

use crate::fixtures::{at, new_user};

on_both_backends!(
    insert_then_look_up_by_id_and_email,
    duplicate_email_or_id_is_a_conflict,
    password_and_status_changes,
    pages_list_every_user_once_in_id_order,
);

async fn insert_then_look_up_by_id_and_email(store: &Store) {
    store.migrate().await.unwrap();
    let mut alice = UserRecord {
        id: "0190a000-0000-7000-8000-000000000001".to_owned(),
        email: "alice@example.com".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        status: UserStatus::Frozen,
        created_at: at(10),
        password_changed_at: at(20),
        mfa_changed_at: Some(at(30)),
    };
    store.insert_user(&alice).await.unwrap();
    assert_eq!(
        store.get_user(&alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.find_user_by_email("alice@example.com").await.unwrap(),
        Some(alice.clone())
    );
    // Emails are matched exactly: normalising is the caller's job.
    assert_eq!(
        store.find_user_by_email("Alice@example.com").await.unwrap(),
        None
    );
    assert_eq!(
        store.find_user_by_email("bob@example.com").await.unwrap(),
        None
    );
    assert_eq!(store.get_user("no-such-id").await.unwrap(), None);

    // Sub-second parts are dropped: times are whole seconds.
    alice.id = "0190a000-0000-7000-8000-000000000002".to_owned();
    alice.email = "alice2@example.com".to_owned();
    alice.created_at = at(10) + time::Duration::milliseconds(750);
    store.insert_user(&alice).await.unwrap();
    assert_eq!(
        store.get_user(&alice.id).await.unwrap().unwrap().created_at,
        at(10)
    );

    // The password hash stays out of Debug output (and so out of logs).
    let shown = format!("{alice:?}");
    assert!(!shown.contains("argon2id"), "{shown}");
    assert!(shown.contains("alice2@example.com"), "{shown}");
}

async fn duplicate_email_or_id_is_a_conflict(store: &Store) {
    store.migrate().await.unwrap();
    let alice = new_user(store, "alice@example.com").await;
    let same_email = UserRecord {
        id: uuid::Uuid::now_v7().to_string(),
        password_hash: "other".to_owned(),
        ..alice.clone()
    };
    assert!(matches!(
        store.insert_user(&same_email).await,
        Err(StoreError::Conflict)
    ));
    let same_id = UserRecord {
        email: "other@example.com".to_owned(),
        ..alice.clone()
    };
    assert!(matches!(
        store.insert_user(&same_id).await,
        Err(StoreError::Conflict)
    ));
    // Nothing changed.
    assert_eq!(
        store.find_user_by_email("alice@example.com").await.unwrap(),
        Some(alice)
    );
    assert_eq!(
        store.find_user_by_email("other@example.com").await.unwrap(),
        None
    );
}

async fn password_and_status_changes(store: &Store) {
    store.migrate().await.unwrap();
    let alice = new_user(store, "alice@example.com").await;
    let bob = new_user(store, "bob@example.com").await;

    assert!(
        store
            .set_password(&alice.id, "new-hash", at(100))
            .await
            .unwrap()
    );
    let got = store.get_user(&alice.id).await.unwrap().unwrap();
    assert_eq!(got.password_hash, "new-hash");
    assert_eq!(got.password_changed_at, at(100));
    assert_eq!(got.created_at, at(0));
    assert!(
        !store
            .set_password("no-such-id", "x", at(100))
            .await
            .unwrap()
    );

    assert!(
        store
            .set_user_status(&alice.id, UserStatus::Frozen)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_user(&alice.id).await.unwrap().unwrap().status,
        UserStatus::Frozen
    );
    // Setting the same status again is not an error.
    assert!(
        store
            .set_user_status(&alice.id, UserStatus::Frozen)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_user_status(&alice.id, UserStatus::Active)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_user(&alice.id).await.unwrap().unwrap().status,
        UserStatus::Active
    );
    assert!(
        !store
            .set_user_status("no-such-id", UserStatus::Frozen)
            .await
            .unwrap()
    );
    // Bob was not touched by any of it.
    assert_eq!(store.get_user(&bob.id).await.unwrap(), Some(bob));
}

async fn pages_list_every_user_once_in_id_order(store: &Store) {
    store.migrate().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(new_user(store, &format!("user{i}@example.com")).await.id);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_users(after.as_deref(), 2).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|u| u.id.clone()));
        match page.next {
            Some(next) => {
                assert_eq!(Some(&next), seen.last());
                after = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // A limit of 0 is brought up to 1; a huge one returns everything, without `next`.
    let one = store.list_users(None, 0).await.unwrap();
    assert_eq!(one.items.len(), 1);
    assert_eq!(one.next.as_deref(), Some(ids[0].as_str()));
    let all = store.list_users(None, u32::MAX).await.unwrap();
    assert_eq!(all.items.len(), 5);
    assert_eq!(all.next, None);
    let none = store.list_users(Some(&ids[4]), 10).await.unwrap();
    assert!(none.items.is_empty());
    assert_eq!(none.next, None);
}
