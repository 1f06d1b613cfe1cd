//! Login challenges: live until consumed once or expired; wrong codes are counted.

use bourse_store::{MfaChallenge, Store, StoreError};
use time::Duration;

use crate::fixtures::{at, hash, new_user};

on_both_backends!(
    challenge_is_consumed_once,
    wrong_codes_count_without_burning_the_challenge,
    expired_challenge_is_gone,
);

async fn challenge_is_consumed_once(store: &Store) {
    store.migrate().await.unwrap();
    let user = new_user(store, "alice@example.com").await;
    store
        .insert_mfa_challenge(&hash("c1"), &user.id, at(300))
        .await
        .unwrap();
    assert_eq!(
        store.get_mfa_challenge(&hash("c1"), at(10)).await.unwrap(),
        Some(MfaChallenge {
            user_id: user.id.clone(),
            attempts: 0,
            first_factor: "pwd".into(),
            expires_at: at(300),
        })
    );
    assert!(matches!(
        store
            .insert_mfa_challenge(&hash("c1"), &user.id, at(300))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(
        store
            .consume_mfa_challenge(&hash("c1"), at(20))
            .await
            .unwrap()
    );
    assert!(
        !store
            .consume_mfa_challenge(&hash("c1"), at(21))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_mfa_challenge(&hash("c1"), at(22)).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .bump_mfa_challenge_attempts(&hash("c1"))
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .consume_mfa_challenge(&hash("unknown"), at(20))
            .await
            .unwrap()
    );

    // Two requests racing with the same challenge: one wins.
    store
        .insert_mfa_challenge(&hash("c2"), &user.id, at(300))
        .await
        .unwrap();
    let c2 = hash("c2");
    let (a, b) = tokio::join!(
        store.consume_mfa_challenge(&c2, at(30)),
        store.consume_mfa_challenge(&c2, at(30))
    );
    assert!(a.unwrap() ^ b.unwrap());
}

async fn wrong_codes_count_without_burning_the_challenge(store: &Store) {
    store.migrate().await.unwrap();
    let user = new_user(store, "alice@example.com").await;
    store
        .insert_mfa_challenge(&hash("c1"), &user.id, at(300))
        .await
        .unwrap();
    assert_eq!(
        store
            .bump_mfa_challenge_attempts(&hash("c1"))
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store
            .bump_mfa_challenge_attempts(&hash("c1"))
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        store
            .get_mfa_challenge(&hash("c1"), at(10))
            .await
            .unwrap()
            .map(|c| c.attempts),
        Some(2)
    );
    assert_eq!(
        store
            .bump_mfa_challenge_attempts(&hash("unknown"))
            .await
            .unwrap(),
        None
    );
    // Still consumable after wrong codes.
    assert!(
        store
            .consume_mfa_challenge(&hash("c1"), at(11))
            .await
            .unwrap()
    );
}

async fn expired_challenge_is_gone(store: &Store) {
    store.migrate().await.unwrap();
    let user = new_user(store, "alice@example.com").await;
    store
        .insert_mfa_challenge(&hash("old"), &user.id, at(300))
        .await
        .unwrap();
    store
        .insert_mfa_challenge(&hash("new"), &user.id, at(900))
        .await
        .unwrap();
    assert!(
        store
            .get_mfa_challenge(&hash("old"), at(299))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .get_mfa_challenge(&hash("old"), at(300))
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .consume_mfa_challenge(&hash("old"), at(300))
            .await
            .unwrap()
    );

    let purged = store
        .purge_expired(at(300), Duration::minutes(15))
        .await
        .unwrap();
    assert_eq!(purged.mfa_challenges, 1);
    assert!(
        store
            .get_mfa_challenge(&hash("new"), at(301))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .consume_mfa_challenge(&hash("new"), at(302))
            .await
            .unwrap()
    );
    // A challenge for a user that does not exist is refused.
    assert!(matches!(
        store
            .insert_mfa_challenge(&hash("orphan"), "no-such-user", at(300))
            .await,
        Err(StoreError::Internal)
    ));
}
