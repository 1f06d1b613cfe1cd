//! `bourse`: the exchange API server and its admin commands.

use std::path::PathBuf;
use std::process::ExitCode;

use bourse::config::{Config, LogFormat, Overrides};

/// mimalloc: a server allocating small, short-lived buffers per request runs measurably
/// faster on it than on glibc malloc (see docs/benchmarks.md). The hello baseline of the
/// HTTP benchmark uses it too, so the comparison stays fair.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bourse",
    version,
    about = "The bourse crypto-derivatives exchange API"
)]
struct Cli {
    /// TOML configuration file (also BOURSE_CONFIG).
    #[arg(long, global = true, env = "BOURSE_CONFIG")]
    config: Option<PathBuf>,
    /// Folder for the embedded database, certificate and local state.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Public HTTPS listener address.
    #[arg(long, global = true)]
    public_addr: Option<String>,
    /// Admin HTTPS listener address.
    #[arg(long, global = true)]
    admin_addr: Option<String>,
    /// Database URL: sqlite://PATH or postgres://…
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Redis URL (redis://…) for rate limits shared by several instances.
    #[arg(long, global = true)]
    redis_url: Option<String>,
    /// PEM certificate chain.
    #[arg(long, global = true)]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, global = true)]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the public and admin HTTPS listeners.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the OpenAPI document of the public API (`--admin` for the admin API).
    Openapi {
        /// The admin listener's document instead.
        #[arg(long)]
        admin: bool,
    },
    /// Platform administration from the operator's shell.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Signing and master keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The exchange engine's journal.
    Engine {
        #[command(subcommand)]
        command: EngineCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk every node's hash chain from its first record. Prints `OK` with the count,
    /// or names the first record of each broken chain that was changed, removed or
    /// reordered and exits 1.
    Verify {
        /// A head written down earlier by `bourse audit head` (or the writer's
        /// `audit chain head` log line), as CHAIN:SEQ:HASH; repeatable. The record must
        /// still be there with this hash: catches records cut off the end of a chain and
        /// a chain recomputed from scratch.
        #[arg(long = "anchor", value_name = "CHAIN:SEQ:HASH")]
        anchors: Vec<bourse_store::AuditAnchor>,
    },
    /// Print each chain's head as CHAIN:SEQ:HASH, one per line: keep these outside the
    /// database (a ticket, another system's log) to verify against later.
    Head,
}

#[derive(Debug, Subcommand)]
enum EngineCommand {
    /// Replay the whole journal from its first record (no snapshot) and print the last
    /// sequence number, the records replayed and the state hash, as one JSON line. Run
    /// it on a stopped node: the hash must equal what the node reported.
    Verify,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Admin API keys (internal use only; the secret is shown once at creation).
    Keys {
        #[command(subcommand)]
        command: AdminKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AdminKeyCommand {
    /// Create a key and print it once.
    Create {
        /// Who or what the key is for.
        #[arg(long)]
        name: String,
        /// Scopes to grant, comma-separated, e.g. `instruments:write,users:read`.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Expiry: RFC 3339 time, or a duration such as `30d`, `12h`, `90m`.
        #[arg(long)]
        expires: Option<String>,
        /// Client network allowed to use the key (CIDR; repeat for several).
        #[arg(long = "allow-ip")]
        allow_ip: Vec<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new JWT signing key; older keys keep verifying until their tokens expire.
    Rotate,
    /// Add a new master key and re-encrypt every stored secret under it.
    RotateMaster,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment, flags) with secrets redacted.
    Show,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flags = Overrides {
        data_dir: cli.data_dir.clone(),
        public_addr: cli.public_addr.clone(),
        admin_addr: cli.admin_addr.clone(),
        database_url: cli.database_url.clone(),
        redis_url: cli.redis_url.clone(),
        tls_cert: cli.tls_cert.clone(),
        tls_key: cli.tls_key.clone(),
    };
    let cfg = match Config::load(cli.config.as_deref(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bourse: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            print!("{}", cfg.redacted_toml());
            ExitCode::SUCCESS
        }
        Command::Openapi { admin } => match if admin {
            bourse_api::admin_openapi()
        } else {
            bourse_api::openapi()
        }
        .to_pretty_json()
        {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bourse: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Migrate => run(&cfg, migrate(&cfg)),
        Command::Admin {
            command: AdminCommand::Keys { command },
        } => {
            // Validate before touching the database: a typo is a usage error (exit 2).
            if let AdminKeyCommand::Create {
                scopes, expires, ..
            } = &command
            {
                for sc in scopes {
                    if let Err(e) = bourse_auth::admin_key::AdminScope::parse(sc) {
                        eprintln!("bourse: key `scopes`: {e}");
                        return ExitCode::from(2);
                    }
                }
                if let Some(x) = expires
                    && parse_expiry(x, time::OffsetDateTime::now_utc()).is_none()
                {
                    eprintln!(
                        "bourse: key `expires`: use RFC 3339 or a duration like 30d, 12h, 90m"
                    );
                    return ExitCode::from(2);
                }
            }
            run(&cfg, admin_keys(&cfg, command))
        }
        Command::Keys { command } => run(&cfg, keys(&cfg, command)),
        Command::Engine {
            command: EngineCommand::Verify,
        } => run(&cfg, engine_verify(&cfg)),
        Command::Audit {
            command: AuditCommand::Verify { anchors },
        } => run(&cfg, audit_verify(&cfg, &anchors)),
        Command::Audit {
            command: AuditCommand::Head,
        } => run(&cfg, audit_head(&cfg)),
        Command::Serve => run_logging_to(&cfg, true, serve(&cfg)),
    }
}

fn run(cfg: &Config, fut: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    run_logging_to(cfg, false, fut)
}

/// `serve` logs to stdout (the service's output); every other command logs to stderr so
/// that what it prints on stdout stays machine-readable.
fn run_logging_to(
    cfg: &Config,
    stdout: bool,
    fut: impl Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    init_logging(cfg, stdout);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bourse: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "bourse stopped with an error");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(cfg: &Config, stdout: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let writer = if stdout {
        BoxMakeWriter::new(std::io::stdout)
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match cfg.log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
    // The default hook prints the panic message (which may hold request data) and can
    // print a backtrace; log only where it happened.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%location, "panic");
    }));
}

async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    let store = bourse::open_store(cfg).await?;
    tracing::info!("migrations applied");
    store.close().await;
    Ok(())
}

/// `RFC 3339` or `<n>d|h|m` from now.
fn parse_expiry(text: &str, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Some(t);
    }
    let (n, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    let d = match unit {
        "d" => time::Duration::days(n),
        "h" => time::Duration::hours(n),
        "m" => time::Duration::minutes(n),
        _ => return None,
    };
    now.checked_add(d)
}

async fn admin_keys(cfg: &Config, command: AdminKeyCommand) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let store = bourse::open_store(cfg).await?;
    let now = time::OffsetDateTime::now_utc();
    let show = |k: &bourse_store::AdminKeyRecord| {
        serde_json::json!({
            "id": k.id, "name": k.name, "hint": k.hint, "scopes": k.scopes,
            "created_at": k.created_at.unix_timestamp(),
            "expires_at": k.expires_at.map(|t| t.unix_timestamp()),
            "allowed_cidrs": k.allowed_cidrs,
            "last_used_at": k.last_used_at.map(|t| t.unix_timestamp()),
            "revoked": k.revoked_at.is_some(),
        })
    };
    match command {
        AdminKeyCommand::Create {
            name,
            scopes,
            expires,
            allow_ip,
        } => {
            let req = bourse_identity::admin_keys::NewKey {
                name,
                scopes,
                expires_at: expires.as_deref().and_then(|x| parse_expiry(x, now)),
                allowed_cidrs: allow_ip,
            };
            let (record, secret) =
                bourse_identity::admin_keys::create(&store, &req, None, now).await?;
            let mut v = show(&record);
            v["key"] = serde_json::Value::String(secret.expose_secret().to_owned());
            v["note"] = "store this key now; it is not shown again".into();
            println!("{v}");
        }
        AdminKeyCommand::List => {
            for k in store.list_admin_keys().await? {
                println!("{}", show(&k));
            }
        }
        AdminKeyCommand::Revoke { id } => {
            if !store.revoke_admin_key(&id, now).await? {
                anyhow::bail!("no active admin key with id {id}");
            }
            println!("revoked {id}");
        }
    }
    store.close().await;
    Ok(())
}

async fn keys(cfg: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let store = bourse::open_store(cfg).await?;
    match command {
        KeysCommand::Rotate => {
            let identity = bourse::open_identity(cfg, &store).await?;
            let kid = identity
                .rotate_signing_key(time::OffsetDateTime::now_utc())
                .await?;
            println!("{}", serde_json::json!({ "signing_key": kid }));
        }
        KeysCommand::RotateMaster => {
            if cfg.master_key.is_some() {
                anyhow::bail!(
                    "the master key comes from BOURSE_MASTER_KEY; rotate it where it is kept \
                     (prepend a new `id:base64` line), then run this with master_key_file"
                );
            }
            let path = cfg.effective_master_key_file();
            // Make sure the file exists (first run) before rotating it.
            bourse_identity::load_or_create_keyring(&path, None)?;
            let (id, done) = bourse_identity::rotate_master_key(&path, &store).await?;
            println!(
                "{}",
                serde_json::json!({
                    "master_key": id,
                    "totp_secrets_resealed": done.totp_secrets,
                    "signing_keys_resealed": done.signing_keys,
                    "note": "restart every bourse node to use the new master key",
                })
            );
        }
    }
    store.close().await;
    Ok(())
}

async fn serve(cfg: &Config) -> anyhow::Result<()> {
    let running = bourse::start(cfg).await?;
    let stop = running.stop_signal();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down gracefully"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down gracefully"),
    }
    let _ = stop.send(true);
    running.wait().await;
    tracing::info!("bourse stopped");
    Ok(())
}

async fn engine_verify(cfg: &Config) -> anyhow::Result<()> {
    let dir = cfg.effective_journal_dir();
    let settlement = bourse_engine::core::Asset::parse(&cfg.engine.settlement_asset)
        .ok_or_else(|| anyhow::anyhow!("engine.settlement_asset is not an asset code"))?;
    let (seq, records, hash) =
        tokio::task::spawn_blocking(move || bourse_engine::replay_fresh(&dir, settlement))
            .await?
            .map_err(|e| anyhow::anyhow!("replaying the journal: {e}"))?;
    println!(
        "{}",
        serde_json::json!({
            "durable_seq": seq,
            "records": records,
            "state_hash": format!("{hash:016x}"),
        })
    );
    Ok(())
}

async fn audit_head(cfg: &Config) -> anyhow::Result<()> {
    let store = bourse::open_store(cfg).await?;
    let heads = store.audit_heads().await;
    store.close().await;
    for h in heads? {
        println!("{h}");
    }
    Ok(())
}

async fn audit_verify(cfg: &Config, anchors: &[bourse_store::AuditAnchor]) -> anyhow::Result<()> {
    let store = bourse::open_store(cfg).await?;
    let report = store.verify_audit_anchored(anchors).await;
    store.close().await;
    let report = report?;
    if report.breaks.is_empty() {
        println!(
            "OK: {} audit records in {} chain(s)",
            report.records, report.chains
        );
        return Ok(());
    }
    for (chain, b) in &report.breaks {
        println!("BROKEN: chain {chain}: {b}");
    }
    anyhow::bail!(
        "the audit log was tampered with: first bad record seq {} (chain {})",
        report.breaks[0].1.seq(),
        report.breaks[0].0
    )
}
