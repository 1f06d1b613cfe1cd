//! `bourse`: the exchange API server and its admin commands.

use std::path::PathBuf;
use std::process::ExitCode;

use bourse::config::{Config, LogFormat, Overrides};
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
    /// Manage admin API keys (internal use only; shown once at creation).
    AdminKey {
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
        /// A scope to grant (repeat for several), e.g. `instruments:write`.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
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
        Command::AdminKey { command } => {
            // Validate scopes before touching the database: a typo is a usage error.
            if let AdminKeyCommand::Create { scopes, .. } = &command {
                for s in scopes {
                    if let Err(e) = bourse_auth::admin_key::AdminScope::parse(s) {
                        eprintln!("bourse: key `scope`: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            run(&cfg, admin_key(&cfg, command))
        }
        Command::Serve => run(&cfg, serve(&cfg)),
    }
}

fn run(cfg: &Config, fut: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    init_logging(cfg);
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

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
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

async fn admin_key(cfg: &Config, command: AdminKeyCommand) -> anyhow::Result<()> {
    let store = bourse::open_store(cfg).await?;
    let now = time::OffsetDateTime::now_utc();
    match command {
        AdminKeyCommand::Create { name, scopes } => {
            let (record, secret) = bourse::admin_keys::create(&store, &name, &scopes, now).await?;
            println!(
                "{}",
                serde_json::json!({
                    "id": record.id,
                    "name": record.name,
                    "scopes": record.scopes,
                    "key": secret,
                    "note": "store this key now; it is not shown again",
                })
            );
        }
        AdminKeyCommand::List => {
            for k in store.list_admin_keys().await? {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": k.id, "name": k.name, "hint": k.hint, "scopes": k.scopes,
                        "created_at": k.created_at.unix_timestamp(),
                        "revoked": k.revoked_at.is_some(),
                    })
                );
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
