//! Failed-login backoff: growth, cap, window reset, independent keys.

use bourse_store::{BackoffPolicy, LoginThrottle, Store};
use time::Duration;

use crate::fixtures::at;

on_both_backends!(
    locks_double_from_the_threshold_up_to_the_cap,
    a_quiet_window_starts_a_new_run,
    keys_are_independent_and_cleared_on_success,
);

const POLICY: BackoffPolicy = BackoffPolicy {
    window: Duration::minutes(15),
    threshold: 3,
    base_lock: Duration::minutes(1),
    max_lock: Duration::minutes(10),
};

fn state(failures: i64, locked_until: Option<i64>) -> LoginThrottle {
    LoginThrottle {
        failures,
        locked_until: locked_until.map(at),
    }
}

async fn locks_double_from_the_threshold_up_to_the_cap(store: &Store) {
    store.migrate().await.unwrap();
    let key = "acct:alice@example.com";
    assert_eq!(
        store.login_throttle(key, at(0)).await.unwrap(),
        state(0, None)
    );
    assert_eq!(
        store
            .record_login_failure(key, at(0), &POLICY)
            .await
            .unwrap(),
        state(1, None)
    );
    assert_eq!(
        store
            .record_login_failure(key, at(1), &POLICY)
            .await
            .unwrap(),
        state(2, None)
    );
    assert_eq!(
        store
            .record_login_failure(key, at(2), &POLICY)
            .await
            .unwrap(),
        state(3, Some(62))
    );
    assert_eq!(
        store.login_throttle(key, at(61)).await.unwrap(),
        state(3, Some(62))
    );
    // The lock is over at its end.
    assert_eq!(
        store.login_throttle(key, at(62)).await.unwrap(),
        state(3, None)
    );
    // Each further failure doubles the lock: 2, 4, 8 minutes, then the 10-minute cap.
    assert_eq!(
        store
            .record_login_failure(key, at(100), &POLICY)
            .await
            .unwrap(),
        state(4, Some(220))
    );
    assert_eq!(
        store
            .record_login_failure(key, at(300), &POLICY)
            .await
            .unwrap(),
        state(5, Some(540))
    );
    assert_eq!(
        store
            .record_login_failure(key, at(600), &POLICY)
            .await
            .unwrap(),
        state(6, Some(1080))
    );
    assert_eq!(
        store
            .record_login_failure(key, at(1100), &POLICY)
            .await
            .unwrap(),
        state(7, Some(1700))
    );
    assert_eq!(
        store
            .record_login_failure(key, at(1800), &POLICY)
            .await
            .unwrap(),
        state(8, Some(2400))
    );
    // A failure while locked never shortens the lock in force.
    let long = BackoffPolicy {
        base_lock: Duration::seconds(1),
        max_lock: Duration::seconds(1),
        ..POLICY
    };
    assert_eq!(
        store
            .record_login_failure(key, at(1900), &long)
            .await
            .unwrap(),
        state(9, Some(2400))
    );
}

async fn a_quiet_window_starts_a_new_run(store: &Store) {
    store.migrate().await.unwrap();
    let key = "ip:192.0.2.7";
    store
        .record_login_failure(key, at(0), &POLICY)
        .await
        .unwrap();
    // Failures closer together than the window keep counting, however long the run.
    assert_eq!(
        store
            .record_login_failure(key, at(899), &POLICY)
            .await
            .unwrap(),
        state(2, None)
    );
    // A whole window after the last failure: a new run.
    assert_eq!(
        store
            .record_login_failure(key, at(1799), &POLICY)
            .await
            .unwrap(),
        state(1, None)
    );
    store
        .record_login_failure(key, at(1800), &POLICY)
        .await
        .unwrap();
    assert_eq!(
        store
            .record_login_failure(key, at(1801), &POLICY)
            .await
            .unwrap(),
        state(3, Some(1861))
    );

    // A lock longer than the window keeps the run going while it is in force.
    let slow = BackoffPolicy {
        window: Duration::minutes(1),
        base_lock: Duration::minutes(10),
        max_lock: Duration::hours(1),
        ..POLICY
    };
    let key = "acct:bob@example.com";
    for t in 0..3 {
        store.record_login_failure(key, at(t), &slow).await.unwrap();
    }
    assert_eq!(
        store.login_throttle(key, at(3)).await.unwrap(),
        state(3, Some(602))
    );
    assert_eq!(
        store
            .record_login_failure(key, at(300), &slow)
            .await
            .unwrap(),
        state(4, Some(1500))
    );
    // Once the lock is over and a window has passed, it starts again.
    assert_eq!(
        store
            .record_login_failure(key, at(1600), &slow)
            .await
            .unwrap(),
        state(1, None)
    );
    assert_eq!(
        store.login_throttle(key, at(1600)).await.unwrap(),
        state(1, None)
    );

    // Purging drops only entries that would start afresh anyway.
    let purged = store.purge_expired(at(1800), POLICY.window).await.unwrap();
    assert_eq!(purged.login_throttle, 0);
    let purged = store.purge_expired(at(2800), POLICY.window).await.unwrap();
    assert_eq!(purged.login_throttle, 2);
    assert_eq!(
        store
            .login_throttle("ip:192.0.2.7", at(2800))
            .await
            .unwrap(),
        state(0, None)
    );
}

async fn keys_are_independent_and_cleared_on_success(store: &Store) {
    store.migrate().await.unwrap();
    for t in 0..3 {
        store
            .record_login_failure("acct:alice@example.com", at(t), &POLICY)
            .await
            .unwrap();
    }
    store
        .record_login_failure("ip:192.0.2.7", at(0), &POLICY)
        .await
        .unwrap();
    assert_eq!(
        store
            .login_throttle("acct:alice@example.com", at(10))
            .await
            .unwrap(),
        state(3, Some(62))
    );
    assert_eq!(
        store.login_throttle("ip:192.0.2.7", at(10)).await.unwrap(),
        state(1, None)
    );
    assert_eq!(
        store
            .login_throttle("acct:bob@example.com", at(10))
            .await
            .unwrap(),
        state(0, None)
    );
    assert!(store.clear_login_failures("ip:192.0.2.7").await.unwrap());
    assert!(!store.clear_login_failures("ip:192.0.2.7").await.unwrap());
    assert_eq!(
        store.login_throttle("ip:192.0.2.7", at(10)).await.unwrap(),
        state(0, None)
    );
    assert_eq!(
        store
            .login_throttle("acct:alice@example.com", at(10))
            .await
            .unwrap(),
        state(3, Some(62))
    );
}
