//! Two-factor state: enrolment, replay protection, failure lock, recovery codes,
//! re-encryption.

use bourse_store::{Store, StoreError, TotpFailure};
use time::Duration;

use crate::fixtures::{at, hash, new_user};

on_both_backends!(
    enrolment_is_pending_until_confirmed,
    a_time_step_is_accepted_once,
    concurrent_uses_of_one_step_succeed_once,
    wrong_codes_lock_and_the_lock_runs_out,
    recovery_codes_are_single_use,
    deleting_totp_removes_the_codes,
    secret_blobs_are_replaced_only_if_unchanged,
);

fn codes(prefix: &str) -> Vec<String> {
    (0..10).map(|i| hash(&format!("{prefix}{i}"))).collect()
}

/// A user with a confirmed secret (step 100 at `at(0)`) and the codes `rc0`..`rc9`.
async fn enrolled(store: &Store, email: &str) -> String {
    let user = new_user(store, email).await;
    store
        .put_pending_totp(&user.id, b"sealed", at(0))
        .await
        .unwrap();
    assert!(
        store
            .confirm_totp(&user.id, 100, at(0), &codes("rc"))
            .await
            .unwrap()
    );
    user.id
}

async fn enrolment_is_pending_until_confirmed(store: &Store) {
    store.migrate().await.unwrap();
    let user = new_user(store, "alice@example.com").await;
    assert_eq!(store.get_totp(&user.id).await.unwrap(), None);

    store
        .put_pending_totp(&user.id, b"first", at(10))
        .await
        .unwrap();
    let pending = store.get_totp(&user.id).await.unwrap().unwrap();
    assert_eq!(pending.secret_enc, b"first");
    assert_eq!(pending.created_at, at(10));
    assert_eq!(pending.confirmed_at, None);
    assert_eq!(pending.last_used_step, None);
    // A pending secret is not usable for codes.
    assert!(!store.record_totp_success(&user.id, 5).await.unwrap());
    // Starting again replaces the pending secret and its state.
    store
        .record_totp_failure(&user.id, at(11), 5, Duration::minutes(5))
        .await
        .unwrap();
    store
        .put_pending_totp(&user.id, b"second", at(20))
        .await
        .unwrap();
    let pending = store.get_totp(&user.id).await.unwrap().unwrap();
    assert_eq!(pending.secret_enc, b"second");
    assert_eq!(pending.created_at, at(20));
    assert_eq!(pending.failed_attempts, 0);

    assert!(
        store
            .confirm_totp(&user.id, 1000, at(30), &codes("rc"))
            .await
            .unwrap()
    );
    let confirmed = store.get_totp(&user.id).await.unwrap().unwrap();
    assert_eq!(confirmed.confirmed_at, Some(at(30)));
    assert_eq!(confirmed.last_used_step, Some(1000));
    assert_eq!(confirmed.secret_enc, b"second");
    assert_eq!(store.remaining_recovery_codes(&user.id).await.unwrap(), 10);
    assert_eq!(
        store
            .get_user(&user.id)
            .await
            .unwrap()
            .unwrap()
            .mfa_changed_at,
        Some(at(30))
    );
    // The blob stays out of Debug output.
    let shown = format!("{confirmed:?}");
    assert!(
        !shown.contains(&format!("{:?}", confirmed.secret_enc)),
        "{shown}"
    );
    assert!(shown.contains("<redacted>"), "{shown}");

    // Confirming twice does nothing; a confirmed secret cannot be replaced.
    assert!(
        !store
            .confirm_totp(&user.id, 2000, at(40), &codes("xx"))
            .await
            .unwrap()
    );
    assert!(matches!(
        store.put_pending_totp(&user.id, b"third", at(50)).await,
        Err(StoreError::Conflict)
    ));
    let after = store.get_totp(&user.id).await.unwrap().unwrap();
    assert_eq!(after, confirmed);
    assert!(
        store
            .use_recovery_code(&user.id, &hash("rc0"), at(60))
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code(&user.id, &hash("xx0"), at(60))
            .await
            .unwrap()
    );

    // Nothing to confirm without a pending secret; duplicate code hashes change nothing.
    let bob = new_user(store, "bob@example.com").await;
    assert!(
        !store
            .confirm_totp(&bob.id, 1, at(0), &codes("rc"))
            .await
            .unwrap()
    );
    store
        .put_pending_totp(&bob.id, b"bob", at(0))
        .await
        .unwrap();
    let twice = vec![hash("same"), hash("same")];
    assert!(matches!(
        store.confirm_totp(&bob.id, 1, at(0), &twice).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.get_totp(&bob.id).await.unwrap().unwrap().confirmed_at,
        None
    );
    assert_eq!(store.remaining_recovery_codes(&bob.id).await.unwrap(), 0);
    assert_eq!(
        store
            .get_user(&bob.id)
            .await
            .unwrap()
            .unwrap()
            .mfa_changed_at,
        None
    );
    // No secret for a user that does not exist.
    assert!(matches!(
        store.put_pending_totp("no-such-user", b"x", at(0)).await,
        Err(StoreError::Internal)
    ));
}

async fn a_time_step_is_accepted_once(store: &Store) {
    store.migrate().await.unwrap();
    let user = enrolled(store, "alice@example.com").await;
    // The confirming code's step cannot be replayed.
    assert!(!store.record_totp_success(&user, 100).await.unwrap());
    assert!(store.record_totp_success(&user, 101).await.unwrap());
    assert!(!store.record_totp_success(&user, 101).await.unwrap());
    // An earlier step (the previous-step window) after a later one is refused too.
    assert!(!store.record_totp_success(&user, 100).await.unwrap());
    assert!(store.record_totp_success(&user, 105).await.unwrap());
    assert_eq!(
        store.get_totp(&user).await.unwrap().unwrap().last_used_step,
        Some(105)
    );
    assert!(
        !store
            .record_totp_success("no-such-user", 200)
            .await
            .unwrap()
    );
}

async fn concurrent_uses_of_one_step_succeed_once(store: &Store) {
    store.migrate().await.unwrap();
    let user = enrolled(store, "alice@example.com").await;
    for step in 101..111 {
        let (a, b) = tokio::join!(
            store.record_totp_success(&user, step),
            store.record_totp_success(&user, step)
        );
        let accepted = [a.unwrap(), b.unwrap()];
        assert_eq!(
            accepted.iter().filter(|ok| **ok).count(),
            1,
            "step {step}: {accepted:?}"
        );
    }
    let rc3 = hash("rc3");
    let (a, b) = tokio::join!(
        store.use_recovery_code(&user, &rc3, at(10)),
        store.use_recovery_code(&user, &rc3, at(10))
    );
    assert!(a.unwrap() ^ b.unwrap());
    assert_eq!(store.remaining_recovery_codes(&user).await.unwrap(), 9);
}

async fn wrong_codes_lock_and_the_lock_runs_out(store: &Store) {
    store.migrate().await.unwrap();
    let user = enrolled(store, "alice@example.com").await;
    let lock = Duration::minutes(5);
    for attempt in 1..=4 {
        assert_eq!(
            store
                .record_totp_failure(&user, at(attempt), 5, lock)
                .await
                .unwrap(),
            Some(TotpFailure {
                attempts: attempt,
                locked_until: None
            })
        );
    }
    assert_eq!(
        store
            .record_totp_failure(&user, at(5), 5, lock)
            .await
            .unwrap(),
        Some(TotpFailure {
            attempts: 5,
            locked_until: Some(at(305))
        })
    );
    let state = store.get_totp(&user).await.unwrap().unwrap();
    assert_eq!(state.failed_attempts, 5);
    assert_eq!(state.locked_until, Some(at(305)));
    // Another failure while locked moves the lock on.
    assert_eq!(
        store
            .record_totp_failure(&user, at(100), 5, lock)
            .await
            .unwrap(),
        Some(TotpFailure {
            attempts: 6,
            locked_until: Some(at(400))
        })
    );
    // Once the lock has run out, counting starts again.
    assert_eq!(
        store
            .record_totp_failure(&user, at(400), 5, lock)
            .await
            .unwrap(),
        Some(TotpFailure {
            attempts: 1,
            locked_until: None
        })
    );
    // A right code clears the count.
    store
        .record_totp_failure(&user, at(401), 5, lock)
        .await
        .unwrap();
    assert!(store.record_totp_success(&user, 150).await.unwrap());
    assert_eq!(
        store
            .get_totp(&user)
            .await
            .unwrap()
            .unwrap()
            .failed_attempts,
        0
    );
    assert_eq!(
        store
            .record_totp_failure(&user, at(402), 5, lock)
            .await
            .unwrap(),
        Some(TotpFailure {
            attempts: 1,
            locked_until: None
        })
    );
    assert_eq!(
        store
            .record_totp_failure("no-such-user", at(0), 5, lock)
            .await
            .unwrap(),
        None
    );
}

async fn recovery_codes_are_single_use(store: &Store) {
    store.migrate().await.unwrap();
    let alice = enrolled(store, "alice@example.com").await;
    let bob = enrolled(store, "bob@example.com").await;
    assert!(
        store
            .use_recovery_code(&alice, &hash("rc0"), at(10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code(&alice, &hash("rc0"), at(11))
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code(&alice, &hash("nope"), at(12))
            .await
            .unwrap()
    );
    assert_eq!(store.remaining_recovery_codes(&alice).await.unwrap(), 9);
    // Bob's codes are his own: the same hash is a separate code.
    assert_eq!(store.remaining_recovery_codes(&bob).await.unwrap(), 10);
    assert!(
        store
            .use_recovery_code(&bob, &hash("rc0"), at(13))
            .await
            .unwrap()
    );

    // Re-enrolling (delete, then confirm again) replaces the codes.
    store.delete_totp(&alice, at(20)).await.unwrap();
    store
        .put_pending_totp(&alice, b"again", at(21))
        .await
        .unwrap();
    assert!(
        store
            .confirm_totp(&alice, 500, at(22), &codes("new"))
            .await
            .unwrap()
    );
    assert_eq!(store.remaining_recovery_codes(&alice).await.unwrap(), 10);
    assert!(
        !store
            .use_recovery_code(&alice, &hash("rc1"), at(23))
            .await
            .unwrap()
    );
    assert!(
        store
            .use_recovery_code(&alice, &hash("new1"), at(23))
            .await
            .unwrap()
    );
}

async fn deleting_totp_removes_the_codes(store: &Store) {
    store.migrate().await.unwrap();
    let user = enrolled(store, "alice@example.com").await;
    assert!(store.delete_totp(&user, at(50)).await.unwrap());
    assert_eq!(store.get_totp(&user).await.unwrap(), None);
    assert_eq!(store.remaining_recovery_codes(&user).await.unwrap(), 0);
    assert!(
        !store
            .use_recovery_code(&user, &hash("rc1"), at(51))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_user(&user).await.unwrap().unwrap().mfa_changed_at,
        Some(at(50))
    );
    assert!(!store.delete_totp(&user, at(60)).await.unwrap());
    // Dropping a pending enrolment does not count as a 2FA change.
    store
        .put_pending_totp(&user, b"pending", at(70))
        .await
        .unwrap();
    assert!(store.delete_totp(&user, at(80)).await.unwrap());
    assert_eq!(
        store.get_user(&user).await.unwrap().unwrap().mfa_changed_at,
        Some(at(50))
    );
}

async fn secret_blobs_are_replaced_only_if_unchanged(store: &Store) {
    store.migrate().await.unwrap();
    let alice = enrolled(store, "alice@example.com").await;
    let bob = new_user(store, "bob@example.com").await;
    store
        .put_pending_totp(&bob.id, b"bob-old", at(0))
        .await
        .unwrap();
    let mut expected = vec![
        (alice.clone(), b"sealed".to_vec()),
        (bob.id.clone(), b"bob-old".to_vec()),
    ];
    expected.sort();
    assert_eq!(store.list_totp_secrets().await.unwrap(), expected);

    assert!(
        store
            .replace_totp_secret_blob(&alice, b"sealed", b"resealed")
            .await
            .unwrap()
    );
    // Bob re-enrolled meanwhile: the re-encryption of his old blob must not win.
    store
        .put_pending_totp(&bob.id, b"bob-new", at(1))
        .await
        .unwrap();
    assert!(
        !store
            .replace_totp_secret_blob(&bob.id, b"bob-old", b"bob-old-resealed")
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_totp(&alice).await.unwrap().unwrap().secret_enc,
        b"resealed"
    );
    assert_eq!(
        store.get_totp(&bob.id).await.unwrap().unwrap().secret_enc,
        b"bob-new"
    );
    // The rest of the state is untouched by re-encryption.
    assert_eq!(
        store
            .get_totp(&alice)
            .await
            .unwrap()
            .unwrap()
            .last_used_step,
        Some(100)
    );
}
