//! Refresh tokens: rotation, reuse detection, races, expiry, revocation, purging.

use bourse_store::{RotateOutcome, Store, StoreError};
use time::Duration;

use crate::fixtures::{at, hash, new_session, new_user};

on_both_backends!(
    multi_thread:
    rotation_issues_a_new_token_and_touches_the_session,
    reuse_of_a_rotated_token_revokes_the_family,
    concurrent_rotations_of_one_token_rotate_once,
    expired_token_is_invalid_and_changes_nothing,
    revoked_session_makes_its_tokens_invalid,
    purge_removes_expired_tokens_only,
);

/// A session of a new user, with its first refresh token `hash("t0")` valid until `at(1000)`.
async fn session_with_token(store: &Store) -> (String, String) {
    let user = new_user(store, "alice@example.com").await;
    let session = new_session(store, &user.id, at(0)).await;
    store
        .insert_refresh_token(&hash("t0"), &session.id, at(0), at(1000))
        .await
        .unwrap();
    (user.id, session.id)
}

fn rotated(user_id: &str, session_id: &str) -> RotateOutcome {
    RotateOutcome::Rotated {
        session_id: session_id.to_owned(),
        user_id: user_id.to_owned(),
    }
}

fn reused(user_id: &str, session_id: &str) -> RotateOutcome {
    RotateOutcome::Reused {
        session_id: session_id.to_owned(),
        user_id: user_id.to_owned(),
    }
}

async fn rotation_issues_a_new_token_and_touches_the_session(store: &Store) {
    store.migrate().await.unwrap();
    let (user, session) = session_with_token(store).await;
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t0"), &hash("t1"), at(100), at(1100))
            .await
            .unwrap(),
        rotated(&user, &session)
    );
    let got = store.get_session(&session).await.unwrap().unwrap();
    assert_eq!(got.last_used_at, at(100));
    assert_eq!(got.revoked_at, None);
    // The new token rotates in turn, and keeps the expiry it was given.
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t1"), &hash("t2"), at(200), at(1200))
            .await
            .unwrap(),
        rotated(&user, &session)
    );
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t2"), &hash("t3"), at(1200), at(2200))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    assert_eq!(
        store
            .get_session(&session)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        at(200)
    );
    assert_eq!(
        store
            .rotate_refresh_token(&hash("never-issued"), &hash("x"), at(300), at(1300))
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
    // A new hash that exists already is a conflict, and the presented token stays usable.
    assert!(matches!(
        store
            .rotate_refresh_token(&hash("t2"), &hash("t1"), at(300), at(1300))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t2"), &hash("t3"), at(400), at(1400))
            .await
            .unwrap(),
        rotated(&user, &session)
    );
}

async fn reuse_of_a_rotated_token_revokes_the_family(store: &Store) {
    store.migrate().await.unwrap();
    let (user, session) = session_with_token(store).await;
    let other = new_session(store, &user, at(0)).await;
    store
        .insert_refresh_token(&hash("o0"), &other.id, at(0), at(1000))
        .await
        .unwrap();
    store
        .rotate_refresh_token(&hash("t0"), &hash("t1"), at(100), at(1100))
        .await
        .unwrap();
    store
        .rotate_refresh_token(&hash("t1"), &hash("t2"), at(200), at(1200))
        .await
        .unwrap();

    // The stolen first token comes back.
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t0"), &hash("attacker"), at(300), at(1300))
            .await
            .unwrap(),
        reused(&user, &session)
    );
    assert_eq!(
        store
            .get_session(&session)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(at(300))
    );
    // The newest token of the family is dead too, and the attacker's was never stored.
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t2"), &hash("t3"), at(310), at(1310))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    assert_eq!(
        store
            .rotate_refresh_token(&hash("attacker"), &hash("a2"), at(320), at(1320))
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
    // Presenting a used token of a revoked session again changes nothing more.
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t1"), &hash("t4"), at(330), at(1330))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    assert_eq!(
        store
            .get_session(&session)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(at(300))
    );
    // Another session of the same user is a different family: untouched.
    assert_eq!(
        store
            .rotate_refresh_token(&hash("o0"), &hash("o1"), at(340), at(1340))
            .await
            .unwrap(),
        rotated(&user, &other.id)
    );
}

async fn concurrent_rotations_of_one_token_rotate_once(store: &Store) {
    store.migrate().await.unwrap();
    let user = new_user(store, "alice@example.com").await;
    for round in 0..8 {
        let session = new_session(store, &user.id, at(0)).await;
        let presented = hash(&format!("r{round}"));
        store
            .insert_refresh_token(&presented, &session.id, at(0), at(1000))
            .await
            .unwrap();
        let rotate = |new: String| {
            let (store, presented) = (store.clone(), presented.clone());
            tokio::spawn(async move {
                let outcome = store
                    .rotate_refresh_token(&presented, &new, at(100), at(1100))
                    .await
                    .unwrap();
                (new, outcome)
            })
        };
        let (a, b) = tokio::join!(
            rotate(hash(&format!("r{round}a"))),
            rotate(hash(&format!("r{round}b")))
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        let winners: Vec<&String> = outcomes
            .iter()
            .filter(|(_, o)| *o == rotated(&user.id, &session.id))
            .map(|(new, _)| new)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        // The loser presented a used token: reuse, so the session is revoked.
        assert!(
            outcomes
                .iter()
                .any(|(_, o)| *o == reused(&user.id, &session.id)),
            "round {round}: {outcomes:?}"
        );
        assert!(
            store
                .get_session(&session.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        // Neither new token is usable: the winner's belongs to a revoked session, the
        // loser's was never stored.
        for (new, _) in &outcomes {
            let expected = if new == winners[0] {
                RotateOutcome::Invalid
            } else {
                RotateOutcome::Unknown
            };
            assert_eq!(
                store
                    .rotate_refresh_token(new, &hash("next"), at(200), at(1200))
                    .await
                    .unwrap(),
                expected,
                "round {round}"
            );
        }
    }
}

async fn expired_token_is_invalid_and_changes_nothing(store: &Store) {
    store.migrate().await.unwrap();
    let (user, session) = session_with_token(store).await;
    // Expiry is exclusive: at `expires_at` the token is dead.
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t0"), &hash("t1"), at(1000), at(2000))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t0"), &hash("t1"), at(5000), at(6000))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    let got = store.get_session(&session).await.unwrap().unwrap();
    assert_eq!(got.revoked_at, None);
    assert_eq!(got.last_used_at, at(0));
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t1"), &hash("t2"), at(100), at(1100))
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
    // One second before expiry it still rotates: the refusals did not mark it used.
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t0"), &hash("t1"), at(999), at(1999))
            .await
            .unwrap(),
        rotated(&user, &session)
    );
}

async fn revoked_session_makes_its_tokens_invalid(store: &Store) {
    store.migrate().await.unwrap();
    let (user, session) = session_with_token(store).await;
    store
        .rotate_refresh_token(&hash("t0"), &hash("t1"), at(100), at(1100))
        .await
        .unwrap();
    assert!(
        store
            .revoke_session(&user, &session, at(200))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t1"), &hash("t2"), at(300), at(1300))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    // A used token of a revoked session is refused without moving the revocation time.
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t0"), &hash("t2"), at(300), at(1300))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    assert_eq!(
        store
            .get_session(&session)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(at(200))
    );
}

async fn purge_removes_expired_tokens_only(store: &Store) {
    store.migrate().await.unwrap();
    let (user, session) = session_with_token(store).await;
    store
        .rotate_refresh_token(&hash("t0"), &hash("t1"), at(100), at(5000))
        .await
        .unwrap();
    let purged = store
        .purge_expired(at(1000), Duration::minutes(15))
        .await
        .unwrap();
    assert_eq!(purged.refresh_tokens, 1);
    // The purged token is now unknown; the live one still rotates.
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t0"), &hash("x"), at(1001), at(2000))
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
    assert_eq!(
        store
            .rotate_refresh_token(&hash("t1"), &hash("t2"), at(1002), at(6000))
            .await
            .unwrap(),
        rotated(&user, &session)
    );
    assert_eq!(
        store
            .purge_expired(at(1003), Duration::minutes(15))
            .await
            .unwrap()
            .refresh_tokens,
        0
    );
}
