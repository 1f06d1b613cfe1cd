//! Idempotency keys on both backends.

use bourse_store::{IdempotencyStart, Store};
use time::OffsetDateTime;

on_both_backends!(first_request_is_new_retries_replay_and_other_bodies_mismatch);

async fn first_request_is_new_retries_replay_and_other_bodies_mismatch(store: &Store) {
    store.migrate().await.unwrap();
    let now = OffsetDateTime::now_utc();
    let start =
        |key: &'static str, hash: &'static str| store.start_idempotency("acct-1", key, hash, now);
    assert_eq!(start("k1", "h1").await.unwrap(), IdempotencyStart::New);
    // Not finished yet: a retry must wait.
    assert_eq!(start("k1", "h1").await.unwrap(), IdempotencyStart::InFlight);
    store
        .finish_idempotency("acct-1", "k1", 201, b"{\"id\":1}")
        .await
        .unwrap();
    assert_eq!(
        start("k1", "h1").await.unwrap(),
        IdempotencyStart::Replay {
            status: 201,
            body: b"{\"id\":1}".to_vec()
        }
    );
    assert_eq!(
        start("k1", "other").await.unwrap(),
        IdempotencyStart::Mismatch
    );
    // Keys are per account.
    assert_eq!(
        store
            .start_idempotency("acct-2", "k1", "h9", now)
            .await
            .unwrap(),
        IdempotencyStart::New
    );
    // A released (failed) claim can be processed again; a finished one cannot be released.
    assert_eq!(start("k2", "h2").await.unwrap(), IdempotencyStart::New);
    store.release_idempotency("acct-1", "k2").await.unwrap();
    assert_eq!(start("k2", "h2").await.unwrap(), IdempotencyStart::New);
    store.release_idempotency("acct-1", "k1").await.unwrap();
    assert!(matches!(
        start("k1", "h1").await.unwrap(),
        IdempotencyStart::Replay { .. }
    ));
}

mod races {
    use bourse_store::{IdempotencyStart, Store};
    use time::OffsetDateTime;

    on_both_backends!(multi_thread: concurrent_first_requests_have_one_winner);

    async fn concurrent_first_requests_have_one_winner(store: &Store) {
        store.migrate().await.unwrap();
        let now = OffsetDateTime::now_utc();
        for round in 0..8 {
            let key = format!("race-{round}");
            let (a, b) = tokio::join!(
                store.start_idempotency("acct", &key, "h", now),
                store.start_idempotency("acct", &key, "h", now)
            );
            let news = [a.unwrap(), b.unwrap()]
                .iter()
                .filter(|s| **s == IdempotencyStart::New)
                .count();
            assert_eq!(news, 1, "round {round}");
        }
    }
}
