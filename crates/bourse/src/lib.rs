//! The bourse binary as a library: configuration, TLS, listeners and wiring, so that
//! tests can start exactly what `bourse serve` starts.

pub mod config;
pub mod server;
pub mod surveillance;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bourse_api::{AppState, HttpLimits};
use bourse_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;

/// A running server: its bound addresses and a way to stop it.
#[derive(Debug)]
pub struct Running {
    /// Public listener address.
    pub public_addr: SocketAddr,
    /// Admin listener address.
    pub admin_addr: SocketAddr,
    /// The TLS certificate in use (PEM), for clients that must trust it.
    pub cert_pem: Vec<u8>,
    /// SHA-256 fingerprint of the certificate.
    pub fingerprint: String,
    /// The store, for tests that need to reach under the API.
    pub store: Store,
    /// The identity service.
    pub identity: bourse_identity::Identity,
    /// The exchange engine.
    pub engine: bourse_engine::Engine,
    /// What the engine's start-up found (snapshot, replay, torn tail).
    pub engine_start: bourse_engine::StartReport,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    audit: Option<bourse_api::audit::Writer>,
}

impl Running {
    /// Starts graceful shutdown and waits for both listeners to drain.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.wait().await;
    }

    /// Waits until both listeners have stopped (after [`Running::stop_signal`]), then
    /// lets the engine finish its queue and the read models catch up.
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        // The listeners have drained: write the last audit records.
        if let Some(a) = self.audit {
            a.close().await;
        }
        self.engine.shutdown().await;
        self.store.close().await;
    }

    /// A handle that starts graceful shutdown when sent `true`.
    pub fn stop_signal(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// Opens the database and runs migrations.
pub async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data_dir {}", cfg.data_dir.display()))?;
    let store = Store::connect(&cfg.effective_database_url())
        .await
        .context("opening the database")?;
    store.migrate().await.context("running migrations")?;
    Ok(store)
}

/// How often a node reloads reference data written through other nodes.
pub const CATALOG_REFRESH: Duration = Duration::from_secs(5);

async fn refresh_catalog(
    catalog: bourse_api::catalog::Catalog,
    store: Store,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(CATALOG_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = server::stopped(&mut stop) => return,
            _ = tick.tick() => {
                if let Err(e) = catalog.reload(&store).await {
                    // Keep serving the last good snapshot.
                    tracing::warn!(error = %e, "instrument catalog refresh failed");
                }
            }
        }
    }
}

/// How often the risk clock looks for a deadline that has passed.
const RISK_CLOCK: Duration = Duration::from_millis(250);

/// Time for the core's risk rules: when a deadline has passed (a breaker's halt or an
/// MMP freeze ending, a dead man's switch due), sends `Tick` with the current time,
/// journaled like every command so replay reproduces what it did.
async fn risk_clock(engine: bourse_engine::Engine, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(RISK_CLOCK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = server::stopped(&mut stop) => return,
            _ = tick.tick() => {
                let now = bourse_api::trading::now_ts();
                let due = engine.read(|ex| ex.next_deadline().is_some_and(|d| d <= now));
                if !matches!(due, Ok(true)) {
                    continue;
                }
                let tick = bourse_engine::core::Command::Tick { ts: now };
                if let Err(e) = engine.submit(tick, bourse_engine::Meta::default()).await {
                    tracing::warn!(error = %e, "risk clock tick not accepted; retrying");
                }
            }
        }
    }
}

/// The identity service over `store`, with the master keyring from the config.
pub async fn open_identity(
    cfg: &Config,
    store: &Store,
) -> anyhow::Result<bourse_identity::Identity> {
    let keyring = bourse_identity::load_or_create_keyring(
        &cfg.effective_master_key_file(),
        cfg.master_key.as_ref(),
    )
    .context("loading the master key")?;
    let icfg = bourse_identity::IdentityConfig {
        issuer: cfg.public_url.clone(),
        ..Default::default()
    };
    bourse_identity::Identity::new(
        store.clone(),
        icfg,
        std::sync::Arc::new(keyring),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .context("loading signing keys")
}

async fn refresh_identity(identity: bourse_identity::Identity, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(CATALOG_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = server::stopped(&mut stop) => return,
            _ = tick.tick() => {
                if let Err(e) = identity.refresh(time::OffsetDateTime::now_utc()).await {
                    tracing::warn!(error = %e, "identity refresh failed");
                }
            }
        }
    }
}

/// Opens storage, seeds demo data on an empty embedded database, loads TLS and binds both
/// listeners. Returns once they accept connections.
pub async fn start(cfg: &Config) -> anyhow::Result<Running> {
    tls::install_crypto_provider();
    let store = open_store(cfg).await?;
    if store.backend() == bourse_store::Backend::Sqlite {
        let n = store
            .seed_demo_instruments(time::OffsetDateTime::now_utc())
            .await
            .context("seeding demo instruments")?;
        if n > 0 {
            tracing::info!(count = n, "seeded demo instruments");
        }
    }
    let tls = tls::load(
        cfg.tls_cert.as_deref(),
        cfg.tls_key.as_deref(),
        &cfg.data_dir,
    )?;
    let cert_pem = std::fs::read(&tls.cert_path)?;
    let catalog = bourse_api::catalog::Catalog::default();
    catalog
        .reload(&store)
        .await
        .context("loading the instrument catalog")?;
    let identity = open_identity(cfg, &store).await?;
    let (feeds, feed_rx) = if cfg.surveillance.enabled {
        let (f, r) = surveillance::feeds(cfg.surveillance.queue_capacity);
        (Some(f), Some(r))
    } else {
        (None, None)
    };
    let (engine, engine_start) =
        open_engine_with_tap(cfg, &store, feeds.as_ref().map(|f| f.events.clone())).await?;
    sync_instruments(&catalog, &engine).await?;
    let dual_approval = cfg
        .dual_approval_micros()
        .context("wallet.dual_approval_above")?;
    let (audit, audit_tap) = if cfg.audit.enabled {
        let chain = cfg
            .audit_chain_id()
            .context("reading data_dir/audit-chain-id")?;
        let tee = feeds.as_ref().map(|f| bourse_api::audit::Tee {
            tx: f.audit.clone(),
            dropped: f.audit_dropped.clone(),
        });
        let (writer, tap) =
            bourse_api::audit::Writer::start(store.clone(), chain, cfg.audit.queue_capacity, tee)
                .await
                .context("opening the audit chain")?;
        (Some(writer), tap)
    } else {
        (None, bourse_api::audit::Tap::disabled("public"))
    };
    // Discovery is lazy (first sign-in, then cached): an unreachable provider does not
    // stop the service, its routes answer 503 `oidc_provider_unavailable`.
    let oidc =
        bourse_identity::oidc::Providers::new(cfg.oidc_providers()?).map_err(anyhow::Error::msg)?;
    for rp in oidc.all() {
        let s = rp.settings();
        tracing::info!(provider = %s.name, issuer = %s.issuer_url, redirect_url = %s.redirect_url, "external sign-in provider configured");
    }
    let state = AppState {
        store: store.clone(),
        catalog: catalog.clone(),
        identity: identity.clone(),
        oidc,
        wallet: bourse_api::WalletConfig {
            address_cooldown: time::Duration::seconds(
                i64::try_from(cfg.wallet.address_cooldown_secs).unwrap_or(i64::MAX),
            ),
        },
        trading: bourse_api::trading::Trading::new(engine.clone(), dual_approval),
        audit: audit_tap,
    };
    let rate = cfg.rate_limit.settings(cfg.effective_redis_url());
    let public_gate = bourse_api::ratelimit::Gate::new(rate.clone(), false)
        .await
        .map_err(anyhow::Error::msg)?;
    let admin_gate = bourse_api::ratelimit::Gate::new(rate, true)
        .await
        .map_err(anyhow::Error::msg)?;
    if public_gate.is_shared() {
        tracing::info!("rate limits shared through Redis");
    }
    let limits = HttpLimits {
        gate: Some(public_gate),
        body_limit: cfg.http.body_limit_bytes,
        request_timeout: Duration::from_secs(cfg.http.request_timeout_secs),
    };
    let admin_limits = HttpLimits {
        gate: Some(admin_gate),
        ..limits.clone()
    };
    let transport = server::TransportLimits {
        tls_handshake_timeout: Duration::from_secs(cfg.http.tls_handshake_timeout_secs),
        header_read_timeout: Duration::from_secs(cfg.http.header_read_timeout_secs),
        body_read_timeout: Duration::from_secs(cfg.http.body_read_timeout_secs),
        max_connections: cfg.http.max_connections,
        max_connections_per_ip: cfg.http.max_connections_per_ip,
        max_concurrent_streams: cfg.http.max_concurrent_streams,
        http2_max_pending_accept_reset_streams: cfg.http.http2_max_pending_accept_reset_streams,
        http2_max_local_error_reset_streams: cfg.http.http2_max_local_error_reset_streams,
        max_header_bytes: cfg.http.max_header_bytes,
        shutdown_grace: Duration::from_secs(cfg.http.shutdown_grace_secs),
    };
    let public = TcpListener::bind(cfg.public_addr)
        .await
        .with_context(|| format!("binding public_addr {}", cfg.public_addr))?;
    let admin = TcpListener::bind(cfg.admin_addr)
        .await
        .with_context(|| format!("binding admin_addr {}", cfg.admin_addr))?;
    let public_addr = public.local_addr()?;
    let admin_addr = admin.local_addr()?;
    let (stop, rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(refresh_catalog(catalog, store.clone(), rx.clone())),
        tokio::spawn(refresh_identity(identity.clone(), rx.clone())),
        tokio::spawn(risk_clock(engine.clone(), rx.clone())),
        tokio::spawn(run_surveillance(
            feed_rx,
            cfg.surveillance.rules.clone(),
            cfg.surveillance
                .countries
                .iter()
                .filter_map(|r| r.parse().ok())
                .collect(),
            store.clone(),
            engine.clone(),
            rx.clone(),
        )),
        tokio::spawn(server::serve(
            "public",
            public,
            tls.config.clone(),
            bourse_api::public_router(state.clone(), limits),
            transport,
            rx.clone(),
        )),
        tokio::spawn(server::serve(
            "admin",
            admin,
            tls.config.clone(),
            bourse_api::admin_router(state, admin_limits),
            transport,
            rx,
        )),
    ];
    tracing::info!(public = %public_addr, admin = %admin_addr, "bourse listening");
    Ok(Running {
        public_addr,
        admin_addr,
        cert_pem,
        fingerprint: tls.fingerprint,
        store,
        identity,
        engine,
        engine_start,
        stop,
        tasks,
        audit,
    })
}

async fn run_surveillance(
    feeds: Option<surveillance::Receivers>,
    rules: bourse_surveillance::SurveillanceConfig,
    countries: surveillance::Countries,
    store: Store,
    engine: bourse_engine::Engine,
    stop: watch::Receiver<bool>,
) {
    if let Some(feeds) = feeds {
        surveillance::run(feeds, rules, countries, store, engine, stop).await;
    }
}

/// Starts the engine on the journal in the data folder: latest snapshot + replay, with
/// the read models brought up to date.
pub async fn open_engine(
    cfg: &Config,
    store: &Store,
) -> anyhow::Result<(bourse_engine::Engine, bourse_engine::StartReport)> {
    open_engine_with_tap(cfg, store, None).await
}

/// [`open_engine`], sending every journaled batch's events to `tap` (surveillance).
pub async fn open_engine_with_tap(
    cfg: &Config,
    store: &Store,
    tap: Option<tokio::sync::mpsc::Sender<bourse_engine::EventBatch>>,
) -> anyhow::Result<(bourse_engine::Engine, bourse_engine::StartReport)> {
    let settlement = bourse_engine::core::Asset::parse(&cfg.engine.settlement_asset)
        .context("engine.settlement_asset")?;
    let mut ecfg = bourse_engine::EngineConfig::new(cfg.effective_journal_dir(), settlement);
    ecfg.queue_capacity = cfg.engine.queue_capacity;
    ecfg.max_batch = cfg.engine.max_batch;
    ecfg.snapshot_every = cfg.engine.snapshot_every;
    ecfg.event_tap = tap;
    bourse_engine::Engine::start(ecfg, store.clone())
        .await
        .context("starting the exchange engine")
}

/// Lists in the core every catalog instrument it does not have yet (the catalog is the
/// source of truth for which instruments exist; an admin create writes the store first).
async fn sync_instruments(
    catalog: &bourse_api::catalog::Catalog,
    engine: &bourse_engine::Engine,
) -> anyhow::Result<()> {
    for inst in catalog.all() {
        let Some(symbol) = bourse_engine::core::Symbol::parse(inst.symbol.as_str()) else {
            continue;
        };
        if engine
            .read(|ex| ex.instrument(&symbol).is_some())
            .context("reading the engine")?
        {
            continue;
        }
        let spec = match bourse_api::trading::core_spec(
            &inst,
            bourse_api::trading::Rates::default_for(inst.kind),
        ) {
            Ok(spec) => spec,
            Err(why) => {
                tracing::warn!(symbol = %inst.symbol.as_str(), why, "instrument cannot be traded by the core");
                continue;
            }
        };
        let outcome = engine
            .submit(
                bourse_engine::core::Command::CreateInstrument {
                    spec,
                    ts: bourse_api::trading::now_ts(),
                },
                bourse_engine::Meta::default(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("listing {} in the engine: {e}", inst.symbol.as_str()))?;
        if let Some(reason) = outcome.rejection() {
            tracing::warn!(symbol = %inst.symbol.as_str(), reason = reason.code(), "the core refused an instrument");
        }
    }
    Ok(())
}
