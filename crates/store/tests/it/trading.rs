//! Trading read models and wallet operations on both backends: the projection and its
//! checkpoint, order/fill/ledger/position reads (account-scoped, paged), trading
//! accounts, withdrawals with approvals, deposits.

use bourse_store::{
    DepositRow, FillQuery, FillRow, LedgerQuery, LedgerRow, MAX_PAGE_SIZE, OrderQuery, OrderRow,
    PositionRow, ReadOp, Store, StoreError, WithdrawalRow,
};

on_both_backends!(
    checkpoint_moves_with_its_batch_or_not_at_all,
    order_changes_in_one_batch_equal_changes_across_batches,
    orders_are_paged_newest_first_per_account_with_filters,
    idempotency_keys_find_the_newest_order_of_the_account,
    fills_public_trades_and_volume,
    ledger_is_paged_per_account_with_filters,
    positions_are_replaced_and_listed_by_symbol,
    large_batches_apply_whole_or_not_at_all,
    trading_accounts_are_created_once_from_one,
    withdrawals_move_by_compare_and_set_and_count_approvals,
    withdrawals_are_paged_per_account_and_by_state,
    deposits_are_unique_per_asset_and_reference,
);

const A: i64 = 1;
const B: i64 = 2;

pub fn order(order_id: i64, account_id: i64, symbol: &str) -> OrderRow {
    OrderRow {
        order_id,
        account_id,
        symbol: symbol.to_owned(),
        client_order_id: format!("c-{order_id}"),
        side: "buy".into(),
        order_type: "limit".into(),
        price_ticks: Some(100),
        quantity_lots: 10,
        filled_lots: 0,
        leaves_lots: 10,
        time_in_force: "gtc".into(),
        post_only: false,
        reduce_only: false,
        stp: "cancel_taker".into(),
        status: "new".into(),
        cancel_reason: None,
        idempotency_key: None,
        created_at_us: 1_000 + order_id,
        updated_at_us: 1_000 + order_id,
    }
}

pub fn fill(trade_id: i64, order_id: i64, account_id: i64, liquidity: &str) -> FillRow {
    FillRow {
        trade_id,
        order_id,
        account_id,
        symbol: "BTC-PERP".into(),
        side: if liquidity == "maker" { "buy" } else { "sell" }.into(),
        price_ticks: 100 + trade_id,
        quantity_lots: 2,
        liquidity: liquidity.to_owned(),
        fee_micros: "-12345678901234567890123".into(),
        ts_us: 10_000 + trade_id,
    }
}

pub fn ledger(entry_id: i64, account_id: i64, asset: &str, reason: &str) -> LedgerRow {
    LedgerRow {
        entry_id,
        account_id,
        asset: asset.to_owned(),
        delta_micros: "-5".into(),
        balance_micros: "340282366920938463463374607431768211455".into(),
        reason: reason.to_owned(),
        ref_id: Some(format!("ref-{entry_id}")),
        ts_us: 20_000 + entry_id,
    }
}

pub fn position(account_id: i64, symbol: &str, size: &str) -> PositionRow {
    PositionRow {
        account_id,
        symbol: symbol.to_owned(),
        size_lots: size.to_owned(),
        cost: "-99999999999999999999".into(),
        realised_pnl_micros: "0".into(),
        updated_at_us: 30_000,
    }
}

fn orders_of(account_id: i64, limit: u32) -> OrderQuery {
    OrderQuery {
        account_id,
        limit,
        ..OrderQuery::default()
    }
}

fn ids(orders: &[OrderRow]) -> Vec<i64> {
    orders.iter().map(|o| o.order_id).collect()
}

/// Every page of `q` (by `before`), concatenated, checking each is at most `q.limit`.
async fn all_orders(store: &Store, q: &OrderQuery) -> Vec<OrderRow> {
    let mut out = Vec::new();
    let mut q = q.clone();
    loop {
        let page = store.list_orders(&q).await.unwrap();
        assert!(page.len() <= q.limit as usize);
        let done = page.len() < q.limit as usize;
        q.before = page.last().map(|o| o.order_id);
        out.extend(page);
        if done {
            return out;
        }
    }
}

async fn checkpoint_moves_with_its_batch_or_not_at_all(store: &Store) {
    store.migrate().await.unwrap();
    assert_eq!(store.projection_checkpoint().await.unwrap(), 0);
    // Sequence numbers start at 1: 0 is "nothing yet".
    assert!(!store.apply_projection(0, &[]).await.unwrap());

    let first = vec![
        ReadOp::InsertOrder(order(1, A, "BTC-PERP")),
        ReadOp::InsertFill(fill(1, 1, A, "maker")),
        ReadOp::InsertLedger(ledger(1, A, "USDC", "fee")),
        ReadOp::UpsertPosition(position(A, "BTC-PERP", "2")),
    ];
    assert!(store.apply_projection(3, &first).await.unwrap());
    assert_eq!(store.projection_checkpoint().await.unwrap(), 3);

    // Already applied (the same or an earlier checkpoint): nothing happens.
    let late = [
        ReadOp::InsertOrder(order(2, A, "BTC-PERP")),
        ReadOp::UpsertPosition(position(A, "BTC-PERP", "7")),
    ];
    assert!(!store.apply_projection(3, &late).await.unwrap());
    assert!(!store.apply_projection(2, &late).await.unwrap());
    // Replaying the first batch is refused the same way, not as a conflict, and so is
    // a batch that could not be applied at all.
    assert!(!store.apply_projection(3, &first).await.unwrap());
    let broken = [
        ReadOp::InsertOrder(order(2, A, "BTC-PERP")),
        ReadOp::InsertOrder(order(2, A, "BTC-PERP")),
        ReadOp::InsertLedger(LedgerRow {
            delta_micros: "x".into(),
            ..ledger(5, A, "USDC", "fee")
        }),
    ];
    assert!(!store.apply_projection(1, &broken).await.unwrap());
    assert_eq!(store.get_order_any(2).await.unwrap(), None);

    // A failing batch changes nothing, whatever came before the failure in it.
    // Each with whether it fails as a conflict (else as an internal error).
    let failing: Vec<(Vec<ReadOp>, bool)> = vec![
        // A fill that exists.
        (vec![ReadOp::InsertFill(fill(1, 1, A, "maker"))], true),
        // A ledger entry that exists.
        (
            vec![ReadOp::InsertLedger(ledger(1, B, "BTC", "deposit"))],
            true,
        ),
        // An order that exists.
        (vec![ReadOp::InsertOrder(order(1, B, "ETH-PERP"))], true),
        // An order twice in the batch.
        (
            vec![
                ReadOp::InsertOrder(order(9, B, "ETH-PERP")),
                ReadOp::InsertOrder(order(9, B, "ETH-PERP")),
            ],
            true,
        ),
        // A change of an order nobody inserted.
        (
            vec![ReadOp::OrderFilled {
                order_id: 404,
                quantity_lots: 1,
                leaves_lots: 0,
                ts_us: 5,
            }],
            false,
        ),
        (
            vec![ReadOp::OrderClosed {
                order_id: 404,
                status: "canceled".into(),
                reason: None,
                ts_us: 5,
            }],
            false,
        ),
        // Amounts that are not integer text.
        (
            vec![ReadOp::InsertFill(FillRow {
                fee_micros: "1.5".into(),
                ..fill(2, 2, A, "taker")
            })],
            false,
        ),
        (
            vec![ReadOp::UpsertPosition(position(A, "ETH-PERP", "+1"))],
            false,
        ),
        // Values outside a table's rule.
        (
            vec![ReadOp::InsertOrder(OrderRow {
                status: "open".into(),
                ..order(9, B, "ETH-PERP")
            })],
            false,
        ),
        (
            vec![ReadOp::InsertLedger(ledger(9, B, "BTC", "gift"))],
            false,
        ),
        (
            vec![ReadOp::OrderClosed {
                order_id: 1,
                status: "gone".into(),
                reason: None,
                ts_us: 5,
            }],
            false,
        ),
    ];
    for (n, (tail, conflict)) in failing.into_iter().enumerate() {
        let mut batch = vec![
            ReadOp::InsertOrder(order(2, A, "BTC-PERP")),
            ReadOp::OrderFilled {
                order_id: 1,
                quantity_lots: 3,
                leaves_lots: 7,
                ts_us: 4_000,
            },
            ReadOp::InsertFill(fill(2, 2, A, "taker")),
            ReadOp::InsertLedger(ledger(2, A, "USDC", "fee")),
            ReadOp::UpsertPosition(position(A, "BTC-PERP", "-1")),
        ];
        batch.extend(tail);
        let err = store.apply_projection(4, &batch).await.unwrap_err();
        if conflict {
            assert!(matches!(err, StoreError::Conflict), "case {n}: {err:?}");
        } else {
            assert!(matches!(err, StoreError::Internal), "case {n}: {err:?}");
        }
        assert_eq!(store.projection_checkpoint().await.unwrap(), 3, "case {n}");
        assert_eq!(store.get_order_any(2).await.unwrap(), None, "case {n}");
        assert_eq!(
            store.get_order_any(1).await.unwrap(),
            Some(order(1, A, "BTC-PERP")),
            "case {n}"
        );
        let fills = store
            .list_fills(&FillQuery {
                account_id: A,
                limit: 10,
                ..FillQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(fills, [fill(1, 1, A, "maker")], "case {n}");
        let entries = store
            .list_ledger(&LedgerQuery {
                account_id: A,
                limit: 10,
                ..LedgerQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(entries, [ledger(1, A, "USDC", "fee")], "case {n}");
        assert_eq!(
            store.list_positions(A).await.unwrap(),
            [position(A, "BTC-PERP", "2")],
            "case {n}"
        );
    }
    assert!(matches!(
        store.apply_projection(u64::MAX, &[]).await,
        Err(StoreError::Internal)
    ));
    assert_eq!(store.projection_checkpoint().await.unwrap(), 3);

    // The same batch without the failure goes through; an empty batch moves the
    // checkpoint too.
    assert!(
        store
            .apply_projection(4, &[ReadOp::InsertOrder(order(2, A, "BTC-PERP"))])
            .await
            .unwrap()
    );
    assert_eq!(store.projection_checkpoint().await.unwrap(), 4);
    assert!(store.apply_projection(10, &[]).await.unwrap());
    assert_eq!(store.projection_checkpoint().await.unwrap(), 10);
    let big = u64::try_from(i64::MAX).unwrap();
    assert!(store.apply_projection(big, &[]).await.unwrap());
    assert_eq!(store.projection_checkpoint().await.unwrap(), big);
}

/// The lifecycle of three orders as (order id) → ops.
fn lifecycle(base: i64) -> Vec<ReadOp> {
    let (a, b, c) = (base + 1, base + 2, base + 3);
    vec![
        ReadOp::InsertOrder(order(a, A, "BTC-PERP")),
        ReadOp::InsertOrder(OrderRow {
            order_type: "market".into(),
            price_ticks: None,
            time_in_force: "ioc".into(),
            side: "sell".into(),
            ..order(b, A, "BTC-PERP")
        }),
        ReadOp::InsertOrder(OrderRow {
            time_in_force: "gtt".into(),
            post_only: true,
            reduce_only: true,
            stp: "cancel_both".into(),
            ..order(c, A, "ETH-PERP")
        }),
        ReadOp::OrderFilled {
            order_id: a,
            quantity_lots: 4,
            leaves_lots: 6,
            ts_us: 2_000,
        },
        ReadOp::OrderFilled {
            order_id: b,
            quantity_lots: 4,
            leaves_lots: 6,
            ts_us: 2_000,
        },
        ReadOp::OrderAmended {
            order_id: a,
            price_ticks: 99,
            leaves_lots: 3,
            ts_us: 2_001,
        },
        ReadOp::OrderClosed {
            order_id: b,
            status: "canceled".into(),
            reason: Some("ioc_remainder".into()),
            ts_us: 2_002,
        },
        ReadOp::OrderFilled {
            order_id: a,
            quantity_lots: 3,
            leaves_lots: 0,
            ts_us: 2_003,
        },
        ReadOp::OrderClosed {
            order_id: c,
            status: "expired".into(),
            reason: None,
            ts_us: 2_004,
        },
    ]
}

async fn order_changes_in_one_batch_equal_changes_across_batches(store: &Store) {
    store.migrate().await.unwrap();
    // Orders 101..103 one op per batch (each change is an UPDATE of a stored row);
    // orders 201..203 all in one batch (changes of orders inserted in the same batch).
    let mut seq = 0;
    for op in lifecycle(100) {
        seq += 1;
        assert!(store.apply_projection(seq, &[op]).await.unwrap());
    }
    seq += 1;
    assert!(store.apply_projection(seq, &lifecycle(200)).await.unwrap());
    // Some inserted in one batch and changed in the next.
    let ops = lifecycle(300);
    seq += 1;
    assert!(store.apply_projection(seq, &ops[..4]).await.unwrap());
    seq += 1;
    assert!(store.apply_projection(seq, &ops[4..]).await.unwrap());

    let expected = [
        OrderRow {
            price_ticks: Some(99),
            quantity_lots: 7,
            filled_lots: 7,
            leaves_lots: 0,
            status: "filled".into(),
            updated_at_us: 2_003,
            ..order(1, A, "BTC-PERP")
        },
        OrderRow {
            order_type: "market".into(),
            price_ticks: None,
            time_in_force: "ioc".into(),
            side: "sell".into(),
            filled_lots: 4,
            leaves_lots: 0,
            status: "canceled".into(),
            cancel_reason: Some("ioc_remainder".into()),
            updated_at_us: 2_002,
            ..order(2, A, "BTC-PERP")
        },
        OrderRow {
            time_in_force: "gtt".into(),
            post_only: true,
            reduce_only: true,
            stp: "cancel_both".into(),
            leaves_lots: 0,
            status: "expired".into(),
            updated_at_us: 2_004,
            ..order(3, A, "ETH-PERP")
        },
    ];
    for base in [100, 200, 300] {
        for (n, want) in expected.iter().enumerate() {
            let id = base + 1 + i64::try_from(n).unwrap();
            let got = store.get_order(A, id).await.unwrap().unwrap();
            let want = OrderRow {
                order_id: id,
                client_order_id: format!("c-{id}"),
                created_at_us: 1_000 + id,
                ..want.clone()
            };
            assert_eq!(got, want, "order {id}");
        }
    }
    // A partial fill of a stored order.
    seq += 1;
    let ops = [
        ReadOp::InsertOrder(order(400, A, "BTC-PERP")),
        ReadOp::OrderFilled {
            order_id: 400,
            quantity_lots: 1,
            leaves_lots: 9,
            ts_us: 3_000,
        },
    ];
    assert!(store.apply_projection(seq, &ops[..1]).await.unwrap());
    seq += 1;
    assert!(store.apply_projection(seq, &ops[1..]).await.unwrap());
    let got = store.get_order(A, 400).await.unwrap().unwrap();
    assert_eq!(
        (got.filled_lots, got.leaves_lots, got.status.as_str()),
        (1, 9, "partially_filled")
    );
    // Fills on both sides of an amend of a stored order, in one batch: the amend's
    // quantity counts the fills before it only.
    seq += 1;
    let ops = [
        ReadOp::OrderFilled {
            order_id: 400,
            quantity_lots: 2,
            leaves_lots: 7,
            ts_us: 3_001,
        },
        ReadOp::OrderAmended {
            order_id: 400,
            price_ticks: 90,
            leaves_lots: 4,
            ts_us: 3_002,
        },
        ReadOp::OrderFilled {
            order_id: 400,
            quantity_lots: 1,
            leaves_lots: 3,
            ts_us: 3_003,
        },
    ];
    assert!(store.apply_projection(seq, &ops).await.unwrap());
    let got = store.get_order(A, 400).await.unwrap().unwrap();
    assert_eq!(
        got,
        OrderRow {
            price_ticks: Some(90),
            quantity_lots: 7,
            filled_lots: 4,
            leaves_lots: 3,
            status: "partially_filled".into(),
            updated_at_us: 3_003,
            ..order(400, A, "BTC-PERP")
        }
    );
    // A close of a stored order sets its reason; an amend keeps it open.
    seq += 1;
    let ops = [
        ReadOp::OrderClosed {
            order_id: 400,
            status: "canceled".into(),
            reason: Some("user".into()),
            ts_us: 3_004,
        },
        ReadOp::OrderClosed {
            order_id: 101,
            status: "expired".into(),
            reason: None,
            ts_us: 3_004,
        },
    ];
    assert!(store.apply_projection(seq, &ops).await.unwrap());
    let got = store.get_order(A, 400).await.unwrap().unwrap();
    assert_eq!(
        (
            got.quantity_lots,
            got.filled_lots,
            got.leaves_lots,
            got.status.as_str(),
            got.cancel_reason.as_deref()
        ),
        (7, 4, 0, "canceled", Some("user"))
    );
    let got = store.get_order(A, 101).await.unwrap().unwrap();
    assert_eq!((got.status.as_str(), got.cancel_reason), ("expired", None));
    // Only changes that name a stored order apply: one unknown order fails the batch.
    seq += 1;
    let ops = [
        ReadOp::OrderFilled {
            order_id: 102,
            quantity_lots: 1,
            leaves_lots: 0,
            ts_us: 3_005,
        },
        ReadOp::OrderFilled {
            order_id: 404,
            quantity_lots: 1,
            leaves_lots: 0,
            ts_us: 3_005,
        },
    ];
    assert!(matches!(
        store.apply_projection(seq, &ops).await,
        Err(StoreError::Internal)
    ));
    assert_eq!(
        store.get_order(A, 102).await.unwrap().unwrap().filled_lots,
        4
    );
}

async fn orders_are_paged_newest_first_per_account_with_filters(store: &Store) {
    store.migrate().await.unwrap();
    let mut ops = Vec::new();
    // A: ids 1..=25, two symbols, some filled or canceled; B: ids 26..=30.
    for id in 1..=25 {
        let symbol = if id % 2 == 0 { "ETH-PERP" } else { "BTC-PERP" };
        ops.push(ReadOp::InsertOrder(order(id, A, symbol)));
        match id % 5 {
            0 => ops.push(ReadOp::OrderFilled {
                order_id: id,
                quantity_lots: 10,
                leaves_lots: 0,
                ts_us: 5_000,
            }),
            1 => ops.push(ReadOp::OrderClosed {
                order_id: id,
                status: "canceled".into(),
                reason: Some("user".into()),
                ts_us: 5_000,
            }),
            2 => ops.push(ReadOp::OrderFilled {
                order_id: id,
                quantity_lots: 1,
                leaves_lots: 9,
                ts_us: 5_000,
            }),
            _ => {}
        }
    }
    for id in 26..=30 {
        ops.push(ReadOp::InsertOrder(order(id, B, "BTC-PERP")));
    }
    assert!(store.apply_projection(1, &ops).await.unwrap());

    let every: Vec<i64> = (1..=25).rev().collect();
    for limit in [1, 7, 10, 25, 26, 1000] {
        let got = all_orders(store, &orders_of(A, limit)).await;
        assert_eq!(ids(&got), every, "limit {limit}");
        assert!(got.iter().all(|o| o.account_id == A));
    }
    // 0 means the smallest page, not "everything"; more than the maximum is the maximum.
    assert_eq!(store.list_orders(&orders_of(A, 0)).await.unwrap().len(), 1);
    assert_eq!(
        store
            .list_orders(&orders_of(A, u32::MAX))
            .await
            .unwrap()
            .len(),
        25
    );
    let page = store
        .list_orders(&OrderQuery {
            before: Some(20),
            ..orders_of(A, 3)
        })
        .await
        .unwrap();
    assert_eq!(ids(&page), [19, 18, 17]);

    let symbol = all_orders(
        store,
        &OrderQuery {
            symbol: Some("ETH-PERP".into()),
            ..orders_of(A, 4)
        },
    )
    .await;
    assert_eq!(
        ids(&symbol),
        (1..=25).rev().filter(|i| i % 2 == 0).collect::<Vec<_>>()
    );
    let open = all_orders(
        store,
        &OrderQuery {
            open_only: true,
            ..orders_of(A, 4)
        },
    )
    .await;
    assert_eq!(
        ids(&open),
        (1..=25)
            .rev()
            .filter(|i| matches!(i % 5, 2..=4))
            .collect::<Vec<_>>()
    );
    for (status, rest) in [
        ("filled", 0),
        ("canceled", 1),
        ("partially_filled", 2),
        ("new", 3),
    ] {
        let got = all_orders(
            store,
            &OrderQuery {
                status: Some(status.into()),
                ..orders_of(A, 3)
            },
        )
        .await;
        let want: Vec<i64> = (1..=25)
            .rev()
            .filter(|i| i % 5 == rest || (rest == 3 && i % 5 == 4))
            .collect();
        assert_eq!(ids(&got), want, "{status}");
        assert!(got.iter().all(|o| o.status == status));
    }
    // Filters combine.
    let got = all_orders(
        store,
        &OrderQuery {
            symbol: Some("BTC-PERP".into()),
            open_only: true,
            status: Some("partially_filled".into()),
            ..orders_of(A, 2)
        },
    )
    .await;
    assert_eq!(ids(&got), [17, 7]);
    assert!(
        all_orders(
            store,
            &OrderQuery {
                open_only: true,
                status: Some("filled".into()),
                ..orders_of(A, 2)
            }
        )
        .await
        .is_empty()
    );

    // Ownership: B sees only its own, A's order is not B's.
    assert_eq!(
        ids(&all_orders(store, &orders_of(B, 2)).await),
        [30, 29, 28, 27, 26]
    );
    assert_eq!(store.get_order(B, 1).await.unwrap(), None);
    assert_eq!(store.get_order(A, 26).await.unwrap(), None);
    assert_eq!(store.get_order(A, 404).await.unwrap(), None);
    assert_eq!(
        store.get_order(B, 26).await.unwrap(),
        Some(order(26, B, "BTC-PERP"))
    );
    assert_eq!(store.get_order_any(3).await.unwrap().unwrap().account_id, A);
    assert_eq!(store.get_order_any(404).await.unwrap(), None);
    assert!(all_orders(store, &orders_of(99, 10)).await.is_empty());
}

async fn idempotency_keys_find_the_newest_order_of_the_account(store: &Store) {
    store.migrate().await.unwrap();
    let keyed = |id, account, key: &str| OrderRow {
        idempotency_key: Some(key.to_owned()),
        ..order(id, account, "BTC-PERP")
    };
    let ops = [
        ReadOp::InsertOrder(keyed(1, A, "k1")),
        // The same key in another account.
        ReadOp::InsertOrder(keyed(2, B, "k1")),
        // Orders without a key never collide.
        ReadOp::InsertOrder(order(3, A, "BTC-PERP")),
        ReadOp::InsertOrder(order(4, A, "BTC-PERP")),
    ];
    assert!(store.apply_projection(1, &ops).await.unwrap());
    assert_eq!(
        store.find_order_by_idempotency_key(A, "k1").await.unwrap(),
        Some(keyed(1, A, "k1"))
    );
    assert_eq!(
        store.find_order_by_idempotency_key(B, "k1").await.unwrap(),
        Some(keyed(2, B, "k1"))
    );
    assert_eq!(
        store.find_order_by_idempotency_key(A, "k2").await.unwrap(),
        None
    );
    assert_eq!(
        store.find_order_by_idempotency_key(99, "k1").await.unwrap(),
        None
    );
    // The key again in A (its claim was purged and the key reused): projected, never a
    // stalled batch; a retry finds the newest order.
    let again = [
        ReadOp::InsertOrder(keyed(5, A, "k2")),
        ReadOp::InsertOrder(keyed(6, A, "k1")),
    ];
    assert!(store.apply_projection(2, &again).await.unwrap());
    assert_eq!(
        store.find_order_by_idempotency_key(A, "k1").await.unwrap(),
        Some(keyed(6, A, "k1"))
    );
    assert_eq!(store.projection_checkpoint().await.unwrap(), 2);
}

async fn fills_public_trades_and_volume(store: &Store) {
    store.migrate().await.unwrap();
    // Trades 1..=12 on BTC-PERP: A's order 1 makes, B's order 2 takes; trades 13..=15
    // on ETH-PERP the other way round (A takes with order 3).
    let mut ops = vec![
        ReadOp::InsertOrder(order(1, A, "BTC-PERP")),
        ReadOp::InsertOrder(order(2, B, "BTC-PERP")),
        ReadOp::InsertOrder(order(3, A, "ETH-PERP")),
    ];
    for t in 1..=12 {
        ops.push(ReadOp::InsertFill(fill(t, 1, A, "maker")));
        ops.push(ReadOp::InsertFill(fill(t, 2, B, "taker")));
    }
    let eth = |f: FillRow| FillRow {
        symbol: "ETH-PERP".into(),
        ..f
    };
    for t in 13..=15 {
        ops.push(ReadOp::InsertFill(eth(fill(t, 4, B, "maker"))));
        ops.push(ReadOp::InsertFill(eth(fill(t, 3, A, "taker"))));
    }
    assert!(store.apply_projection(1, &ops).await.unwrap());

    let trade_ids = |fills: &[FillRow]| fills.iter().map(|f| f.trade_id).collect::<Vec<_>>();
    let q = FillQuery {
        account_id: A,
        limit: 4,
        ..FillQuery::default()
    };
    // Every page of A's fills.
    let mut all = Vec::new();
    let mut page_q = q.clone();
    loop {
        let page = store.list_fills(&page_q).await.unwrap();
        assert!(page.len() <= 4);
        let done = page.len() < 4;
        page_q.before = page.last().map(|f| f.trade_id);
        all.extend(page);
        if done {
            break;
        }
    }
    assert_eq!(trade_ids(&all), (1..=15).rev().collect::<Vec<_>>());
    assert!(all.iter().all(|f| f.account_id == A));
    assert_eq!(all[0], eth(fill(15, 3, A, "taker")));
    assert_eq!(all[14], fill(1, 1, A, "maker"));

    let by_symbol = store
        .list_fills(&FillQuery {
            symbol: Some("ETH-PERP".into()),
            limit: 100,
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(trade_ids(&by_symbol), [15, 14, 13]);
    let by_order = store
        .list_fills(&FillQuery {
            order_id: Some(1),
            before: Some(5),
            limit: 100,
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(trade_ids(&by_order), [4, 3, 2, 1]);
    // B's order is not A's.
    let others = store
        .list_fills(&FillQuery {
            order_id: Some(2),
            limit: 100,
            ..q.clone()
        })
        .await
        .unwrap();
    assert!(others.is_empty());
    let b = store
        .list_fills(&FillQuery {
            account_id: B,
            limit: 100,
            ..FillQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(b.len(), 15);
    assert!(b.iter().all(|f| f.account_id == B));

    // The public tape: one row per trade, the taker's.
    let tape = store.list_public_trades("BTC-PERP", None, 5).await.unwrap();
    assert_eq!(trade_ids(&tape), [12, 11, 10, 9, 8]);
    assert!(
        tape.iter()
            .all(|f| f.liquidity == "taker" && f.account_id == B)
    );
    let tape = store
        .list_public_trades("BTC-PERP", Some(3), 5)
        .await
        .unwrap();
    assert_eq!(trade_ids(&tape), [2, 1]);
    let tape = store.list_public_trades("ETH-PERP", None, 0).await.unwrap();
    assert_eq!(tape, [eth(fill(15, 3, A, "taker"))]);
    assert!(
        store
            .list_public_trades("SOL-PERP", None, 5)
            .await
            .unwrap()
            .is_empty()
    );

    // Volume: taker rows only (2 lots each), from ts 10_000 + trade id.
    assert_eq!(store.traded_volume_since("BTC-PERP", 0).await.unwrap(), 24);
    assert_eq!(
        store.traded_volume_since("BTC-PERP", 10_010).await.unwrap(),
        6
    );
    assert_eq!(
        store.traded_volume_since("BTC-PERP", 10_013).await.unwrap(),
        0
    );
    assert_eq!(
        store.traded_volume_since("ETH-PERP", 10_014).await.unwrap(),
        4
    );
    assert_eq!(store.traded_volume_since("SOL-PERP", 0).await.unwrap(), 0);
}

async fn ledger_is_paged_per_account_with_filters(store: &Store) {
    store.migrate().await.unwrap();
    let reasons = [
        "deposit",
        "withdrawal_held",
        "withdrawal_released",
        "realised_pnl",
        "option_premium",
        "fee",
        "funding",
        "settlement",
    ];
    let mut ops = Vec::new();
    for id in 1..=40 {
        let account = if id % 4 == 0 { B } else { A };
        let asset = if id % 3 == 0 { "BTC" } else { "USDC" };
        let reason = reasons[usize::try_from(id).unwrap() % reasons.len()];
        let mut row = ledger(id, account, asset, reason);
        if id % 7 == 0 {
            row.ref_id = None;
        }
        ops.push(ReadOp::InsertLedger(row));
    }
    assert!(store.apply_projection(1, &ops).await.unwrap());
    let stored: Vec<LedgerRow> = ops
        .iter()
        .map(|op| match op {
            ReadOp::InsertLedger(row) => row.clone(),
            _ => unreachable!(),
        })
        .collect();

    async fn pages(store: &Store, q: &LedgerQuery) -> Vec<LedgerRow> {
        let mut out = Vec::new();
        let mut q = q.clone();
        loop {
            let page = store.list_ledger(&q).await.unwrap();
            let done = page.len() < q.limit as usize;
            q.before = page.last().map(|e| e.entry_id);
            out.extend(page);
            if done {
                return out;
            }
        }
    }
    let want = |f: &dyn Fn(&LedgerRow) -> bool| -> Vec<LedgerRow> {
        stored.iter().rev().filter(|r| f(r)).cloned().collect()
    };
    let q = LedgerQuery {
        account_id: A,
        limit: 6,
        ..LedgerQuery::default()
    };
    assert_eq!(pages(store, &q).await, want(&|r| r.account_id == A));
    let usdc = LedgerQuery {
        asset: Some("USDC".into()),
        ..q.clone()
    };
    assert_eq!(
        pages(store, &usdc).await,
        want(&|r| r.account_id == A && r.asset == "USDC")
    );
    let fees = LedgerQuery {
        reason: Some("fee".into()),
        limit: 1,
        ..q.clone()
    };
    assert_eq!(
        pages(store, &fees).await,
        want(&|r| r.account_id == A && r.reason == "fee")
    );
    let both = LedgerQuery {
        asset: Some("BTC".into()),
        reason: Some("withdrawal_held".into()),
        ..q.clone()
    };
    assert_eq!(
        pages(store, &both).await,
        want(&|r| r.account_id == A && r.asset == "BTC" && r.reason == "withdrawal_held")
    );
    let b = LedgerQuery {
        account_id: B,
        ..q.clone()
    };
    assert_eq!(pages(store, &b).await, want(&|r| r.account_id == B));
    let page = store
        .list_ledger(&LedgerQuery {
            before: Some(10),
            limit: 3,
            ..q
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.entry_id).collect::<Vec<_>>(),
        [9, 7, 6]
    );
}

async fn positions_are_replaced_and_listed_by_symbol(store: &Store) {
    store.migrate().await.unwrap();
    assert!(store.list_positions(A).await.unwrap().is_empty());
    let first = [
        ReadOp::UpsertPosition(position(A, "ETH-PERP", "5")),
        ReadOp::UpsertPosition(position(A, "BTC1-PERP", "-3")),
        ReadOp::UpsertPosition(position(A, "BTC-PERP", "1")),
        ReadOp::UpsertPosition(position(B, "BTC-PERP", "-1")),
    ];
    assert!(store.apply_projection(1, &first).await.unwrap());
    assert_eq!(
        store.list_positions(A).await.unwrap(),
        [
            position(A, "BTC-PERP", "1"),
            position(A, "BTC1-PERP", "-3"),
            position(A, "ETH-PERP", "5"),
        ]
    );
    // Replaced across batches and, the last one counting, within one.
    let closed = PositionRow {
        cost: "0".into(),
        realised_pnl_micros: "-170141183460469231731687303715884105728".into(),
        updated_at_us: 31_000,
        ..position(A, "BTC-PERP", "0")
    };
    let second = [
        ReadOp::UpsertPosition(position(A, "BTC-PERP", "2")),
        ReadOp::UpsertPosition(position(A, "ETH-PERP", "6")),
        ReadOp::UpsertPosition(closed.clone()),
    ];
    assert!(store.apply_projection(2, &second).await.unwrap());
    assert_eq!(
        store.list_positions(A).await.unwrap(),
        [
            closed,
            position(A, "BTC1-PERP", "-3"),
            position(A, "ETH-PERP", "6"),
        ]
    );
    assert_eq!(
        store.list_positions(B).await.unwrap(),
        [position(B, "BTC-PERP", "-1")]
    );
    assert!(store.list_positions(99).await.unwrap().is_empty());
}

async fn large_batches_apply_whole_or_not_at_all(store: &Store) {
    store.migrate().await.unwrap();
    // 1237 orders, each taking one fill against a resting maker order (id 1 of B),
    // with a ledger entry and a position per taker fill: thousands of ops at once.
    const N: i64 = 1237;
    let mut ops = vec![ReadOp::InsertOrder(OrderRow {
        quantity_lots: 1_000_000,
        leaves_lots: 1_000_000,
        ..order(1, B, "BTC-PERP")
    })];
    assert!(store.apply_projection(1, &ops).await.unwrap());
    ops.clear();
    let mut leaves = 1_000_000;
    for i in 1..=N {
        let id = 1 + i;
        ops.push(ReadOp::InsertOrder(order(id, A, "BTC-PERP")));
        leaves -= 2;
        ops.push(ReadOp::OrderFilled {
            order_id: 1,
            quantity_lots: 2,
            leaves_lots: leaves,
            ts_us: 50_000 + i,
        });
        ops.push(ReadOp::OrderFilled {
            order_id: id,
            quantity_lots: 2,
            leaves_lots: 8,
            ts_us: 50_000 + i,
        });
        if i % 2 == 0 {
            ops.push(ReadOp::OrderClosed {
                order_id: id,
                status: "canceled".into(),
                reason: Some("ioc_remainder".into()),
                ts_us: 50_000 + i,
            });
        }
        ops.push(ReadOp::InsertFill(fill(i, 1, B, "maker")));
        ops.push(ReadOp::InsertFill(fill(i, id, A, "taker")));
        ops.push(ReadOp::InsertLedger(ledger(i, A, "USDC", "fee")));
        ops.push(ReadOp::UpsertPosition(position(
            A,
            &format!("P{}-PERP", i % 300),
            &i.to_string(),
        )));
    }
    let ok = ops.clone();
    // The same batch with a conflict at its very end changes nothing.
    ops.push(ReadOp::InsertLedger(ledger(N, B, "USDC", "fee")));
    assert!(matches!(
        store.apply_projection(2, &ops).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.projection_checkpoint().await.unwrap(), 1);
    assert_eq!(store.get_order_any(2).await.unwrap(), None);
    assert_eq!(
        store.get_order_any(1).await.unwrap().unwrap().leaves_lots,
        1_000_000
    );
    assert!(store.list_positions(A).await.unwrap().is_empty());

    assert!(store.apply_projection(2, &ok).await.unwrap());
    assert_eq!(store.projection_checkpoint().await.unwrap(), 2);
    let maker = store.get_order(B, 1).await.unwrap().unwrap();
    assert_eq!(
        (maker.filled_lots, maker.leaves_lots, maker.status.as_str()),
        (2 * N, 1_000_000 - 2 * N, "partially_filled")
    );
    assert_eq!(maker.updated_at_us, 50_000 + N);
    // Pages are capped at MAX_PAGE_SIZE.
    let all = store.list_orders(&orders_of(A, u32::MAX)).await.unwrap();
    assert_eq!(all.len(), MAX_PAGE_SIZE as usize);
    let rest = store
        .list_orders(&OrderQuery {
            before: all.last().map(|o| o.order_id),
            ..orders_of(A, u32::MAX)
        })
        .await
        .unwrap();
    assert_eq!(all.len() + rest.len(), usize::try_from(N).unwrap());
    for o in all.iter().chain(&rest) {
        let i = o.order_id - 1;
        let closed = i % 2 == 0;
        assert_eq!(o.filled_lots, 2, "order {}", o.order_id);
        assert_eq!(o.leaves_lots, if closed { 0 } else { 8 });
        assert_eq!(
            o.status,
            if closed {
                "canceled"
            } else {
                "partially_filled"
            }
        );
    }
    let fills = store
        .list_fills(&FillQuery {
            account_id: B,
            limit: u32::MAX,
            ..FillQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(fills.len(), MAX_PAGE_SIZE as usize);
    assert_eq!(fills[0], fill(N, 1, B, "maker"));
    assert_eq!(
        store.traded_volume_since("BTC-PERP", 0).await.unwrap(),
        2 * N
    );
    let entries = store
        .list_ledger(&LedgerQuery {
            account_id: A,
            before: Some(11),
            limit: u32::MAX,
            ..LedgerQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 10);
    let positions = store.list_positions(A).await.unwrap();
    assert_eq!(positions.len(), 300);
    // The last upsert of each symbol counts: P0-PERP last got i = 1200.
    let p0 = positions.iter().find(|p| p.symbol == "P0-PERP").unwrap();
    assert_eq!(p0.size_lots, "1200");

    // Thousands of changes of stored orders in one batch.
    let changes: Vec<ReadOp> = (1..=N)
        .map(|i| ReadOp::OrderAmended {
            order_id: 1 + i,
            price_ticks: 7,
            leaves_lots: 1,
            ts_us: 60_000,
        })
        .collect();
    assert!(store.apply_projection(3, &changes).await.unwrap());
    let o = store.get_order(A, 2).await.unwrap().unwrap();
    assert_eq!(
        (o.price_ticks, o.quantity_lots, o.leaves_lots),
        (Some(7), 3, 1)
    );
}

async fn trading_accounts_are_created_once_from_one(store: &Store) {
    store.migrate().await.unwrap();
    assert_eq!(store.trading_account_user(1).await.unwrap(), None);
    let alice = store.trading_account_id("user-alice").await.unwrap();
    let bob = store.trading_account_id("user-bob").await.unwrap();
    assert_eq!((alice, bob), (1, 2));
    assert_eq!(store.trading_account_id("user-alice").await.unwrap(), 1);
    assert_eq!(store.trading_account_id("user-bob").await.unwrap(), 2);
    assert_eq!(
        store.trading_account_user(1).await.unwrap().as_deref(),
        Some("user-alice")
    );
    assert_eq!(
        store.trading_account_user(2).await.unwrap().as_deref(),
        Some("user-bob")
    );
    // 0 is the fee account: no user has it.
    assert_eq!(store.trading_account_user(0).await.unwrap(), None);
    assert_eq!(store.trading_account_user(3).await.unwrap(), None);
    assert_eq!(store.trading_account_id("user-carol").await.unwrap(), 3);
}

fn withdrawal(account_id: i64, amount: &str, at: i64) -> WithdrawalRow {
    WithdrawalRow {
        withdrawal_id: 0,
        account_id,
        asset: "USDC".into(),
        amount_micros: amount.to_owned(),
        address_id: "01900000-0000-7000-8000-0000000000a1".into(),
        address: "0xabc0000000000000000000000000000000000001".into(),
        state: "requested".into(),
        reason: None,
        approvals: Vec::new(),
        created_at_us: at,
        updated_at_us: at,
    }
}

async fn withdrawals_move_by_compare_and_set_and_count_approvals(store: &Store) {
    store.migrate().await.unwrap();
    // The id, state and approvals given are not stored.
    let given = WithdrawalRow {
        withdrawal_id: 77,
        state: "completed".into(),
        approvals: vec!["key-x".into()],
        ..withdrawal(A, "250000000", 100)
    };
    let id = store.insert_withdrawal(&given).await.unwrap();
    assert_eq!(id, 1);
    let stored = withdrawal(A, "250000000", 100);
    let stored = WithdrawalRow {
        withdrawal_id: 1,
        ..stored
    };
    assert_eq!(
        store.get_withdrawal(A, 1).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(store.get_withdrawal(B, 1).await.unwrap(), None);
    assert_eq!(
        store.get_withdrawal_any(1).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(store.get_withdrawal_any(2).await.unwrap(), None);

    // Approvals only while pending.
    assert!(matches!(
        store.approve_withdrawal(1, "key-1", 110).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store.approve_withdrawal(404, "key-1", 110).await,
        Err(StoreError::Conflict)
    ));
    assert!(
        !store
            .set_withdrawal_state(1, &["pending"], "approved", None, 120)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_withdrawal_state(1, &[], "pending", None, 120)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_withdrawal_state(404, &["requested"], "pending", None, 120)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_withdrawal_state(1, &["requested", "bogus"], "pending", None, 130)
            .await
            .unwrap()
    );
    // Oldest first, not by key id; the same key twice counts once.
    assert_eq!(store.approve_withdrawal(1, "key-b", 140).await.unwrap(), 1);
    assert_eq!(store.approve_withdrawal(1, "key-b", 141).await.unwrap(), 1);
    assert_eq!(store.approve_withdrawal(1, "key-a", 150).await.unwrap(), 2);
    let got = store.get_withdrawal(A, 1).await.unwrap().unwrap();
    assert_eq!(got.approvals, ["key-b", "key-a"]);
    assert_eq!((got.state.as_str(), got.updated_at_us), ("pending", 150));

    assert!(
        store
            .set_withdrawal_state(1, &["pending"], "approved", None, 160)
            .await
            .unwrap()
    );
    assert!(matches!(
        store.approve_withdrawal(1, "key-c", 170).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store.approve_withdrawal(1, "key-a", 170).await,
        Err(StoreError::Conflict)
    ));
    let got = store.get_withdrawal_any(1).await.unwrap().unwrap();
    assert_eq!(got.approvals, ["key-b", "key-a"]);
    assert_eq!((got.state.as_str(), got.updated_at_us), ("approved", 160));

    // A state that does not exist is refused and changes nothing.
    assert!(matches!(
        store
            .set_withdrawal_state(1, &["approved"], "lost", None, 175)
            .await,
        Err(StoreError::Internal)
    ));
    assert!(
        store
            .set_withdrawal_state(1, &["pending", "approved"], "rejected", Some("risk"), 180)
            .await
            .unwrap()
    );
    let got = store.get_withdrawal(A, 1).await.unwrap().unwrap();
    assert_eq!(
        (got.state.as_str(), got.reason.as_deref(), got.updated_at_us),
        ("rejected", Some("risk"), 180)
    );

    // The engine's word on a state, through the projection; unknown ids are no-ops.
    let id2 = store
        .insert_withdrawal(&withdrawal(B, "1", 200))
        .await
        .unwrap();
    assert_eq!(id2, 2);
    let ops = [
        ReadOp::WithdrawalState {
            withdrawal_id: 2,
            state: "pending".into(),
            ts_us: 210,
        },
        ReadOp::WithdrawalState {
            withdrawal_id: 404,
            state: "completed".into(),
            ts_us: 210,
        },
        ReadOp::WithdrawalState {
            withdrawal_id: 2,
            state: "completed".into(),
            ts_us: 220,
        },
    ];
    assert!(store.apply_projection(1, &ops).await.unwrap());
    let got = store.get_withdrawal(B, 2).await.unwrap().unwrap();
    assert_eq!(
        (got.state.as_str(), got.updated_at_us, got.approvals.len()),
        ("completed", 220, 0)
    );
    assert_eq!(store.get_withdrawal_any(404).await.unwrap(), None);

    // Amounts must be integer text.
    for bad in ["1.5", "", "-0", "1e6"] {
        assert!(matches!(
            store.insert_withdrawal(&withdrawal(A, bad, 300)).await,
            Err(StoreError::Internal)
        ));
    }
    assert_eq!(
        store
            .list_withdrawals_any(None, None, 100)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn withdrawals_are_paged_per_account_and_by_state(store: &Store) {
    store.migrate().await.unwrap();
    // Ids 1..=9: A has the odd ones, B the even ones.
    for i in 1..=9 {
        let account = if i % 2 == 1 { A } else { B };
        let id = store
            .insert_withdrawal(&withdrawal(account, &(i * 1000).to_string(), i))
            .await
            .unwrap();
        assert_eq!(id, i);
    }
    for id in [3, 4, 7] {
        assert!(
            store
                .set_withdrawal_state(id, &["requested"], "pending", None, 50)
                .await
                .unwrap()
        );
    }
    store.approve_withdrawal(3, "key-1", 60).await.unwrap();
    store.approve_withdrawal(3, "key-2", 61).await.unwrap();
    store.approve_withdrawal(7, "key-1", 62).await.unwrap();

    let wids = |rows: &[WithdrawalRow]| rows.iter().map(|w| w.withdrawal_id).collect::<Vec<_>>();
    let page = store.list_withdrawals(A, None, 2).await.unwrap();
    assert_eq!(wids(&page), [9, 7]);
    assert_eq!(page[1].approvals, ["key-1"]);
    let page = store.list_withdrawals(A, Some(7), 2).await.unwrap();
    assert_eq!(wids(&page), [5, 3]);
    assert_eq!(page[1].approvals, ["key-1", "key-2"]);
    assert!(page[0].approvals.is_empty());
    let page = store.list_withdrawals(A, Some(3), 2).await.unwrap();
    assert_eq!(wids(&page), [1]);
    assert_eq!(
        page[0],
        WithdrawalRow {
            withdrawal_id: 1,
            ..withdrawal(A, "1000", 1)
        }
    );
    assert_eq!(
        wids(&store.list_withdrawals(B, None, 100).await.unwrap()),
        [8, 6, 4, 2]
    );
    assert!(
        store
            .list_withdrawals(99, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // A page of 0 is one row (with all its approvals).
    let one = store.list_withdrawals(A, Some(4), 0).await.unwrap();
    assert_eq!(wids(&one), [3]);
    assert_eq!(one[0].approvals.len(), 2);

    // All accounts, by state.
    let all = store.list_withdrawals_any(None, None, 4).await.unwrap();
    assert_eq!(wids(&all), [9, 8, 7, 6]);
    let pending = store
        .list_withdrawals_any(Some("pending"), None, 100)
        .await
        .unwrap();
    assert_eq!(wids(&pending), [7, 4, 3]);
    assert_eq!(pending[2].approvals, ["key-1", "key-2"]);
    let pending = store
        .list_withdrawals_any(Some("pending"), Some(7), 1)
        .await
        .unwrap();
    assert_eq!(wids(&pending), [4]);
    let requested = store
        .list_withdrawals_any(Some("requested"), Some(6), 100)
        .await
        .unwrap();
    assert_eq!(wids(&requested), [5, 2, 1]);
    assert!(
        store
            .list_withdrawals_any(Some("completed"), None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

fn deposit(account_id: i64, asset: &str, tx_ref: &str, at: i64) -> DepositRow {
    DepositRow {
        deposit_id: 0,
        account_id,
        asset: asset.to_owned(),
        amount_micros: "1000000".into(),
        tx_ref: tx_ref.to_owned(),
        state: "credited".into(),
        created_at_us: at,
    }
}

async fn deposits_are_unique_per_asset_and_reference(store: &Store) {
    store.migrate().await.unwrap();
    assert_eq!(
        store
            .insert_deposit(&deposit(A, "USDC", "tx-1", 10))
            .await
            .unwrap(),
        1
    );
    // The same transfer again, even for another account: refused.
    assert!(matches!(
        store.insert_deposit(&deposit(B, "USDC", "tx-1", 11)).await,
        Err(StoreError::Conflict)
    ));
    // The same reference on another asset is another transfer.
    let id = store
        .insert_deposit(&deposit(A, "BTC", "tx-1", 12))
        .await
        .unwrap();
    assert!(id > 1);
    let b = store
        .insert_deposit(&deposit(B, "USDC", "tx-2", 13))
        .await
        .unwrap();
    assert!(b > id);
    assert!(matches!(
        store
            .insert_deposit(&DepositRow {
                amount_micros: "1.0".into(),
                ..deposit(A, "USDC", "tx-3", 14)
            })
            .await,
        Err(StoreError::Internal)
    ));

    // Stored as pending, whatever was given.
    let mine = store.list_deposits(A, None, 100).await.unwrap();
    assert_eq!(
        mine,
        [
            DepositRow {
                deposit_id: id,
                state: "pending".into(),
                ..deposit(A, "BTC", "tx-1", 12)
            },
            DepositRow {
                deposit_id: 1,
                state: "pending".into(),
                ..deposit(A, "USDC", "tx-1", 10)
            },
        ]
    );
    store.set_deposit_state(1, "credited").await.unwrap();
    store.set_deposit_state(id, "failed").await.unwrap();
    // A missing deposit: nothing to change.
    store.set_deposit_state(404, "credited").await.unwrap();
    assert!(matches!(
        store.set_deposit_state(1, "lost").await,
        Err(StoreError::Internal)
    ));
    let page = store.list_deposits(A, None, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!((page[0].deposit_id, page[0].state.as_str()), (id, "failed"));
    let page = store.list_deposits(A, Some(id), 1).await.unwrap();
    assert_eq!(
        (page[0].deposit_id, page[0].state.as_str()),
        (1, "credited")
    );
    assert!(store.list_deposits(A, Some(1), 1).await.unwrap().is_empty());
    // B sees only its own.
    let theirs = store.list_deposits(B, None, 100).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!((theirs[0].deposit_id, theirs[0].account_id), (b, B));
}

mod races {
    use std::collections::BTreeSet;

    use bourse_store::{ReadOp, Store, WithdrawalRow};

    use super::{A, order};

    on_both_backends!(
        multi_thread: concurrent_first_calls_get_one_account,
        concurrent_batches_with_one_checkpoint_apply_once,
        concurrent_approvals_are_all_counted,
    );

    async fn concurrent_first_calls_get_one_account(store: &Store) {
        store.migrate().await.unwrap();
        let mut seen = BTreeSet::new();
        for round in 0..8 {
            let user = format!("user-{round}");
            let (a, b) = tokio::join!(
                store.trading_account_id(&user),
                store.trading_account_id(&user)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a, b, "round {round}");
            assert!(a > 0);
            assert!(seen.insert(a), "a new id per user");
            assert_eq!(
                store.trading_account_user(a).await.unwrap().as_deref(),
                Some(user.as_str())
            );
        }
    }

    async fn concurrent_batches_with_one_checkpoint_apply_once(store: &Store) {
        store.migrate().await.unwrap();
        for seq in 1..=8u64 {
            let id = i64::try_from(seq).unwrap();
            let ops = [
                ReadOp::InsertOrder(order(id, A, "BTC-PERP")),
                ReadOp::OrderFilled {
                    order_id: id,
                    quantity_lots: 1,
                    leaves_lots: 9,
                    ts_us: 5,
                },
            ];
            let (x, y) = tokio::join!(
                store.apply_projection(seq, &ops),
                store.apply_projection(seq, &ops)
            );
            let applied = [x.unwrap(), y.unwrap()].iter().filter(|b| **b).count();
            assert_eq!(applied, 1, "seq {seq}");
            assert_eq!(store.projection_checkpoint().await.unwrap(), seq);
            let o = store.get_order(A, id).await.unwrap().unwrap();
            assert_eq!(o.filled_lots, 1, "applied once");
        }
    }

    async fn concurrent_approvals_are_all_counted(store: &Store) {
        store.migrate().await.unwrap();
        for round in 0..6 {
            let id = store
                .insert_withdrawal(&WithdrawalRow {
                    withdrawal_id: 0,
                    account_id: A,
                    asset: "USDC".into(),
                    amount_micros: "5".into(),
                    address_id: "addr".into(),
                    address: "0xabc".into(),
                    state: "requested".into(),
                    reason: None,
                    approvals: Vec::new(),
                    created_at_us: 1,
                    updated_at_us: 1,
                })
                .await
                .unwrap();
            assert!(
                store
                    .set_withdrawal_state(id, &["requested"], "pending", None, 2)
                    .await
                    .unwrap()
            );
            let (x, y, z) = tokio::join!(
                store.approve_withdrawal(id, "key-1", 3),
                store.approve_withdrawal(id, "key-2", 3),
                store.approve_withdrawal(id, "key-1", 3)
            );
            let counts = [x.unwrap(), y.unwrap(), z.unwrap()];
            // key-2's count is 1 or 2, and whoever came last saw both keys.
            assert_eq!(counts.iter().max(), Some(&2), "round {round}: {counts:?}");
            let got = store.get_withdrawal_any(id).await.unwrap().unwrap();
            assert_eq!(got.approvals.len(), 2);
        }
    }
}
