//! Sessions: storing, listing, revoking (only by the owner), step-up.

use bourse_store::{MAX_USER_AGENT_CHARS, SessionRecord, Store, StoreError};

use crate::fixtures::{at, new_session, new_user};

on_both_backends!(
    session_round_trip_cuts_the_user_agent,
    sessions_list_active_first_then_newest_first,
    only_the_owner_revokes_a_session,
    revoke_all_spares_the_current_session,
    step_up_updates_an_active_session_only,
    session_of_an_unknown_user_is_refused,
);

async fn session_round_trip_cuts_the_user_agent(store: &Store) {
    store.migrate().await.unwrap();
    let alice = new_user(store, "alice@example.com").await;
    let long_agent = "é".repeat(MAX_USER_AGENT_CHARS + 10);
    let session = SessionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: alice.id.clone(),
        created_at: at(10),
        last_used_at: at(11),
        revoked_at: None,
        auth_time: at(9),
        acr: "mfa".to_owned(),
        amr: vec!["pwd".to_owned(), "otp".to_owned()],
        client_ip: Some("2001:db8::1".to_owned()),
        user_agent: Some(long_agent),
    };
    store.insert_session(&session).await.unwrap();
    let got = store.get_session(&session.id).await.unwrap().unwrap();
    assert_eq!(
        got.user_agent.as_deref(),
        Some("é".repeat(MAX_USER_AGENT_CHARS).as_str())
    );
    assert_eq!(
        got,
        SessionRecord {
            user_agent: got.user_agent.clone(),
            ..session.clone()
        }
    );
    assert_eq!(got.amr, ["pwd", "otp"]);

    // No user agent, no address, no methods: all come back as given.
    let bare = SessionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        amr: Vec::new(),
        client_ip: None,
        user_agent: None,
        ..session.clone()
    };
    store.insert_session(&bare).await.unwrap();
    assert_eq!(store.get_session(&bare.id).await.unwrap(), Some(bare));

    assert!(matches!(
        store.insert_session(&session).await,
        Err(StoreError::Conflict)
    ));
    // A method with a space would not come back as one word: refused, not stored.
    let bad = SessionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        amr: vec!["pwd otp".to_owned()],
        ..session
    };
    assert!(matches!(
        store.insert_session(&bad).await,
        Err(StoreError::Internal)
    ));
    assert_eq!(store.get_session(&bad.id).await.unwrap(), None);
    assert_eq!(store.get_session("no-such-session").await.unwrap(), None);
}

async fn sessions_list_active_first_then_newest_first(store: &Store) {
    store.migrate().await.unwrap();
    let alice = new_user(store, "alice@example.com").await;
    let bob = new_user(store, "bob@example.com").await;
    let s1 = new_session(store, &alice.id, at(100)).await;
    let s2 = new_session(store, &alice.id, at(200)).await;
    let s3 = new_session(store, &alice.id, at(300)).await;
    let s4 = new_session(store, &alice.id, at(400)).await;
    new_session(store, &bob.id, at(500)).await;
    assert!(
        store
            .revoke_session(&alice.id, &s4.id, at(450))
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_session(&alice.id, &s2.id, at(460))
            .await
            .unwrap()
    );

    let listed: Vec<String> = store
        .list_sessions(&alice.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        listed,
        [s3.id.clone(), s1.id.clone(), s4.id.clone(), s2.id.clone()]
    );
    let first_two: Vec<String> = store
        .list_sessions(&alice.id, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(first_two, [s3.id, s1.id]);
    assert!(
        store
            .list_sessions("no-such-user", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn only_the_owner_revokes_a_session(store: &Store) {
    store.migrate().await.unwrap();
    let alice = new_user(store, "alice@example.com").await;
    let mallory = new_user(store, "mallory@example.com").await;
    let session = new_session(store, &alice.id, at(100)).await;

    // Another user naming Alice's session id revokes nothing.
    assert!(
        !store
            .revoke_session(&mallory.id, &session.id, at(200))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_session(&session.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
    assert!(
        !store
            .revoke_session(&alice.id, "no-such-session", at(200))
            .await
            .unwrap()
    );

    assert!(
        store
            .revoke_session(&alice.id, &session.id, at(300))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_session(&session.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(at(300))
    );
    // A second revocation is a no-op that keeps the first time.
    assert!(
        !store
            .revoke_session(&alice.id, &session.id, at(400))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_session(&session.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(at(300))
    );
}

async fn revoke_all_spares_the_current_session(store: &Store) {
    store.migrate().await.unwrap();
    let alice = new_user(store, "alice@example.com").await;
    let bob = new_user(store, "bob@example.com").await;
    let current = new_session(store, &alice.id, at(100)).await;
    let other1 = new_session(store, &alice.id, at(110)).await;
    let other2 = new_session(store, &alice.id, at(120)).await;
    let old = new_session(store, &alice.id, at(50)).await;
    store
        .revoke_session(&alice.id, &old.id, at(60))
        .await
        .unwrap();
    let bobs = new_session(store, &bob.id, at(100)).await;

    assert_eq!(
        store
            .revoke_all_sessions(&alice.id, Some(&current.id), at(200))
            .await
            .unwrap(),
        2
    );
    let get = async |id: &str| store.get_session(id).await.unwrap().unwrap().revoked_at;
    assert_eq!(get(&current.id).await, None);
    assert_eq!(get(&other1.id).await, Some(at(200)));
    assert_eq!(get(&other2.id).await, Some(at(200)));
    assert_eq!(get(&old.id).await, Some(at(60)));
    assert_eq!(get(&bobs.id).await, None);

    assert_eq!(
        store
            .revoke_all_sessions(&alice.id, None, at(300))
            .await
            .unwrap(),
        1
    );
    assert_eq!(get(&current.id).await, Some(at(300)));
    assert_eq!(get(&bobs.id).await, None);
    assert_eq!(
        store
            .revoke_all_sessions(&alice.id, None, at(400))
            .await
            .unwrap(),
        0
    );
}

async fn step_up_updates_an_active_session_only(store: &Store) {
    store.migrate().await.unwrap();
    let alice = new_user(store, "alice@example.com").await;
    let session = new_session(store, &alice.id, at(100)).await;
    let amr = vec!["pwd".to_owned(), "otp".to_owned()];
    assert!(
        store
            .update_session_auth(&session.id, at(500), "mfa", &amr)
            .await
            .unwrap()
    );
    let got = store.get_session(&session.id).await.unwrap().unwrap();
    assert_eq!(got.auth_time, at(500));
    assert_eq!(got.acr, "mfa");
    assert_eq!(got.amr, amr);
    assert_eq!(got.created_at, at(100));

    assert!(
        !store
            .update_session_auth("no-such-session", at(500), "mfa", &amr)
            .await
            .unwrap()
    );
    store
        .revoke_session(&alice.id, &session.id, at(600))
        .await
        .unwrap();
    assert!(
        !store
            .update_session_auth(&session.id, at(700), "mfa", &amr)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_session(&session.id)
            .await
            .unwrap()
            .unwrap()
            .auth_time,
        at(500)
    );
}

async fn session_of_an_unknown_user_is_refused(store: &Store) {
    store.migrate().await.unwrap();
    let orphan = SessionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: "no-such-user".to_owned(),
        created_at: at(0),
        last_used_at: at(0),
        revoked_at: None,
        auth_time: at(0),
        acr: "pwd".to_owned(),
        amr: vec!["pwd".to_owned()],
        client_ip: None,
        user_agent: None,
    };
    assert!(matches!(
        store.insert_session(&orphan).await,
        Err(StoreError::Internal)
    ));
    assert_eq!(store.get_session(&orphan.id).await.unwrap(), None);
}
