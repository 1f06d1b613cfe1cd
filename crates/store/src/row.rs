//! Database rows and their conversion into domain types.
//!
//! Rows are plain column values; they become an [`Instrument`] only through
//! [`Instrument::validate`], so a hand-edited or corrupt row is refused (as `Internal`)
//! rather than handed out.

use bourse_types::{
    Asset, Decimal, Instrument, InstrumentKind, InstrumentStatus, OptionRight, Symbol,
};
use time::OffsetDateTime;

use crate::StoreError;
use crate::error::invalid_row;

/// The columns of `instruments` as typed values: what PostgreSQL returns directly and
/// what the SQLite text row parses into.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct InstrumentRow {
    pub symbol: String,
    pub kind: String,
    pub base_asset: String,
    pub quote_asset: String,
    pub settlement_asset: String,
    pub tick_size: Decimal,
    pub lot_size: Decimal,
    pub min_order_size: Decimal,
    pub max_order_size: Decimal,
    pub contract_multiplier: Decimal,
    pub expiry: Option<OffsetDateTime>,
    pub strike: Option<Decimal>,
    pub option_right: Option<String>,
    pub status: String,
}

impl InstrumentRow {
    /// The domain value, checked; `Internal` (logged with the column) when the row is not
    /// a valid instrument.
    pub fn into_instrument(self) -> Result<Instrument, StoreError> {
        let bad = |column| invalid_row(&self.symbol, column);
        let instrument = Instrument {
            symbol: Symbol::parse(&self.symbol).map_err(|_| bad("symbol"))?,
            kind: InstrumentKind::parse(&self.kind).ok_or_else(|| bad("kind"))?,
            base_asset: Asset::parse(&self.base_asset).map_err(|_| bad("base_asset"))?,
            quote_asset: Asset::parse(&self.quote_asset).map_err(|_| bad("quote_asset"))?,
            settlement_asset: Asset::parse(&self.settlement_asset)
                .map_err(|_| bad("settlement_asset"))?,
            tick_size: self.tick_size,
            lot_size: self.lot_size,
            min_order_size: self.min_order_size,
            max_order_size: self.max_order_size,
            contract_multiplier: self.contract_multiplier,
            expiry: self.expiry,
            strike: self.strike,
            option_right: match &self.option_right {
                None => None,
                Some(r) => Some(OptionRight::parse(r).ok_or_else(|| bad("option_right"))?),
            },
            status: InstrumentStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
        };
        instrument.validate().map_err(|e| {
            tracing::error!(symbol = %self.symbol, reason = %e, "stored instrument is not valid");
            StoreError::Internal
        })
    }
}

/// One row of sqlx's `_sqlx_migrations` table, as far as readiness needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct AppliedMigrationRow {
    pub version: i64,
    pub success: bool,
    pub checksum: Vec<u8>,
}
