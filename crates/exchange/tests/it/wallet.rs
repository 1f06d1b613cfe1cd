//! Deposits and withdrawals: holds, confirmation, release, margin limits.

use bourse_exchange::*;

use crate::fixture::*;

fn withdraw(id: u64, account: u64, amount: Money) -> Command {
    Command::Withdraw {
        withdrawal: WithdrawalId(id),
        account: AccountId(account),
        asset: usdc(),
        amount,
        ts: Timestamp(3),
    }
}

#[test]
fn a_withdrawal_holds_funds_at_once_and_confirming_removes_them() {
    let mut ex = market();
    deposit(&mut ex, 1, 100 * USDC);
    ok(&mut ex, withdraw(1, 1, 60 * USDC));
    assert_eq!(cash(&ex, 1), 40 * USDC);
    assert_eq!(ex.held(AccountId(1), &usdc()), 60 * USDC);
    rejected(
        &mut ex,
        withdraw(2, 1, 41 * USDC),
        RejectReason::InsufficientFunds,
    );
    rejected(
        &mut ex,
        withdraw(1, 1, USDC),
        RejectReason::DuplicateWithdrawal,
    );
    rejected(&mut ex, withdraw(2, 1, 0), RejectReason::InvalidAmount);
    rejected(&mut ex, withdraw(2, 0, USDC), RejectReason::FeeAccount);
    ok(
        &mut ex,
        Command::ConfirmWithdrawal {
            withdrawal: WithdrawalId(1),
            ts: Timestamp(4),
        },
    );
    assert_eq!(ex.held(AccountId(1), &usdc()), 0);
    assert_eq!(ex.total_withdrawn(&usdc()), 60 * USDC);
    assert_eq!(
        ex.withdrawal(WithdrawalId(1)).unwrap().state,
        WithdrawalState::Confirmed
    );
    rejected(
        &mut ex,
        Command::ReleaseWithdrawal {
            withdrawal: WithdrawalId(1),
            ts: Timestamp(4),
        },
        RejectReason::UnknownWithdrawal,
    );
}

#[test]
fn a_released_withdrawal_returns_the_funds() {
    let mut ex = market();
    deposit(&mut ex, 1, 100 * USDC);
    ok(&mut ex, withdraw(7, 1, 30 * USDC));
    ok(
        &mut ex,
        Command::ReleaseWithdrawal {
            withdrawal: WithdrawalId(7),
            ts: Timestamp(4),
        },
    );
    assert_eq!(cash(&ex, 1), 100 * USDC);
    assert_eq!(ex.total_withdrawn(&usdc()), 0);
    assert_eq!(
        ex.withdrawal(WithdrawalId(7)).unwrap().state,
        WithdrawalState::Released
    );
}

#[test]
fn a_withdrawal_cannot_take_margin_that_orders_and_positions_use() {
    let mut ex = market();
    deposit(&mut ex, 1, 100 * USDC);
    deposit(&mut ex, 2, 1_000 * USDC);
    // A resting bid of 1 lot ties up 50 USDC of initial margin.
    ok(&mut ex, limit(1, perp(), "a", Side::Buy, MARK, 1));
    rejected(
        &mut ex,
        withdraw(1, 1, 51 * USDC),
        RejectReason::InsufficientFunds,
    );
    ok(&mut ex, withdraw(1, 1, 50 * USDC));
    assert_eq!(ex.account(AccountId(1)).unwrap().available, 0);
    // Deposits of other assets are not collateral and are withdrawn on balance alone.
    let btc = Asset::parse("BTC").unwrap();
    ok(
        &mut ex,
        Command::Deposit {
            account: AccountId(1),
            asset: btc,
            amount: 5,
            ts: Timestamp(3),
        },
    );
    let more = Command::Withdraw {
        withdrawal: WithdrawalId(2),
        account: AccountId(1),
        asset: btc,
        amount: 6,
        ts: Timestamp(3),
    };
    rejected(&mut ex, more, RejectReason::InsufficientFunds);
    ok(
        &mut ex,
        Command::Withdraw {
            withdrawal: WithdrawalId(2),
            account: AccountId(1),
            asset: btc,
            amount: 5,
            ts: Timestamp(3),
        },
    );
}

#[test]
fn deposits_are_bounded_and_never_to_the_fee_account() {
    let mut ex = market();
    rejected(
        &mut ex,
        Command::Deposit {
            account: FEE_ACCOUNT,
            asset: usdc(),
            amount: 1,
            ts: Timestamp(1),
        },
        RejectReason::FeeAccount,
    );
    rejected(
        &mut ex,
        Command::Deposit {
            account: AccountId(1),
            asset: usdc(),
            amount: -1,
            ts: Timestamp(1),
        },
        RejectReason::InvalidAmount,
    );
    rejected(
        &mut ex,
        Command::Deposit {
            account: AccountId(1),
            asset: usdc(),
            amount: MAX_AMOUNT + 1,
            ts: Timestamp(1),
        },
        RejectReason::InvalidAmount,
    );
    deposit(&mut ex, 1, MAX_AMOUNT);
    rejected(
        &mut ex,
        Command::Deposit {
            account: AccountId(1),
            asset: usdc(),
            amount: 1,
            ts: Timestamp(1),
        },
        RejectReason::Overflow,
    );
}
