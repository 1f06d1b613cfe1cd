//! Fresh databases for tests: one per test, removed afterwards.
//!
//! Used by this crate's suite and by other crates' tests (testkit). Small enough to be
//! compiled always rather than behind a feature.
//!
//! PostgreSQL comes from `BOURSE_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`): a URL to a maintenance database of a
//! role that may create databases. Each [`TestDatabase::postgres`] creates
//! `bourse_test_<uuid>` there and drops it again.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use tempfile::TempDir;
use url::Url;
use uuid::Uuid;

use crate::Backend;
use crate::database_url::redact;

/// The PostgreSQL maintenance database used when `BOURSE_TEST_PG_URL` is not set.
pub const DEFAULT_TEST_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long to wait for the PostgreSQL server before calling it unreachable.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A database that exists for one test.
///
/// Call [`TestDatabase::cleanup`] at the end of the test; if the test panics first, `Drop`
/// removes the database on a best-effort basis.
pub struct TestDatabase {
    url: String,
    place: Place,
}

enum Place {
    /// The file lives in this folder, removed with it.
    Sqlite { _dir: TempDir },
    /// A database on a server, dropped through `admin_url`.
    Postgres {
        admin_url: String,
        name: String,
        dropped: bool,
    },
}

impl TestDatabase {
    /// A SQLite file in a new temporary folder (removed when this value is dropped).
    ///
    /// # Panics
    ///
    /// When no temporary folder can be created: a test cannot run without one.
    pub fn sqlite() -> TestDatabase {
        let dir = match tempfile::Builder::new().prefix("bourse-test-").tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("cannot create a temporary folder for a test database: {e}"),
        };
        let url = format!("sqlite://{}", dir.path().join("bourse.db").display());
        TestDatabase {
            url,
            place: Place::Sqlite { _dir: dir },
        }
    }

    /// A new, empty PostgreSQL database, or `None` (after saying so on stderr) when the
    /// server cannot be reached outside CI.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached and `CI=true` (CI provides the service, so its
    /// absence is a failure, not a skip), when `BOURSE_TEST_PG_URL` is not a PostgreSQL
    /// URL, or when the database cannot be created.
    pub async fn postgres() -> Option<TestDatabase> {
        let admin_url =
            std::env::var("BOURSE_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_TEST_PG_URL.to_owned());
        let name = format!("bourse_test_{}", Uuid::now_v7().simple());
        let url = match database_url(&admin_url, &name) {
            Some(url) => url,
            None => panic!(
                "BOURSE_TEST_PG_URL is not a postgres:// URL: {}",
                redact(&admin_url)
            ),
        };
        let mut admin = match admin_connection(&admin_url).await {
            Ok(admin) => admin,
            Err(reason) => {
                let at = redact(&admin_url);
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!(
                        "PostgreSQL not reachable at {at} ({reason}); with CI=true the \
                         PostgreSQL tests require it: start the service or set BOURSE_TEST_PG_URL"
                    );
                }
                eprintln!("skipping: PostgreSQL not reachable at {at} ({reason})");
                return None;
            }
        };
        // `name` is made above from a fixed prefix and a hex UUID: nothing to inject.
        let create = format!("CREATE DATABASE \"{name}\"");
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(create))
            .execute(&mut admin)
            .await
        {
            panic!("cannot create test database {name}: {e}");
        }
        // Best effort: the database exists either way.
        let _ = admin.close().await;
        Some(TestDatabase {
            url,
            place: Place::Postgres {
                admin_url,
                name,
                dropped: false,
            },
        })
    }

    /// The URL to pass to [`crate::Store::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which backend this database is on.
    pub fn backend(&self) -> Backend {
        match self.place {
            Place::Sqlite { .. } => Backend::Sqlite,
            Place::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Removes the database now (PostgreSQL: `DROP DATABASE … WITH (FORCE)`, which also
    /// ends sessions still connected to it). A failure is reported on stderr, and `Drop`
    /// tries once more.
    pub async fn cleanup(mut self) {
        if let Place::Postgres {
            admin_url,
            name,
            dropped,
        } = &mut self.place
        {
            match drop_database(admin_url, name).await {
                Ok(()) => *dropped = true,
                Err(e) => eprintln!("cannot drop test database {name}: {e}"),
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Place::Postgres {
            admin_url,
            name,
            dropped: false,
        } = &self.place
        else {
            return;
        };
        // Drop cannot await, and may run inside (or outside) a Tokio runtime that must not
        // be blocked on: do the work on a thread with its own small runtime and wait for it,
        // so the database is gone before the test process exits.
        let (admin_url, name) = (admin_url.clone(), name.clone());
        let worker = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("cannot drop test database {name}: no runtime: {e}");
                    return;
                }
            };
            if let Err(e) = runtime.block_on(drop_database(&admin_url, &name)) {
                eprintln!("cannot drop test database {name}: {e}");
            }
        });
        if worker.join().is_err() {
            eprintln!("cannot drop a test database: the cleanup thread panicked");
        }
    }
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("backend", &self.backend())
            .field("url", &redact(&self.url))
            .finish()
    }
}

/// `admin_url` pointing at database `name` instead, or `None` if it is not a
/// PostgreSQL URL.
fn database_url(admin_url: &str, name: &str) -> Option<String> {
    let mut url = Url::parse(admin_url).ok()?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return None;
    }
    url.set_path(&format!("/{name}"));
    Some(url.into())
}

async fn admin_connection(admin_url: &str) -> Result<PgConnection, String> {
    let options = PgConnectOptions::from_str(admin_url)
        .map_err(|e| format!("bad URL: {e}"))?
        .disable_statement_logging();
    match tokio::time::timeout(ADMIN_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {ADMIN_TIMEOUT:?}")),
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let mut admin = admin_connection(admin_url).await?;
    // `name` was generated by `postgres()`: a fixed prefix and a hex UUID.
    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let result = sqlx::raw_sql(AssertSqlSafe(statement))
        .execute(&mut admin)
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    let _ = admin.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_database_url_replaces_only_the_database() {
        assert_eq!(
            database_url(
                "postgres://postgres@127.0.0.1:5432/postgres",
                "bourse_test_1"
            )
            .as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/bourse_test_1")
        );
        assert_eq!(
            database_url("postgresql://u:p@db/maint?sslmode=disable", "x").as_deref(),
            Some("postgresql://u:p@db/x?sslmode=disable")
        );
        assert_eq!(database_url("mysql://db/x", "y"), None);
        assert_eq!(database_url("not a url", "y"), None);
    }

    #[test]
    fn sqlite_test_database_lives_in_its_own_folder() {
        let a = TestDatabase::sqlite();
        let b = TestDatabase::sqlite();
        assert!(a.url().starts_with("sqlite:///"));
        assert_ne!(a.url(), b.url());
        assert_eq!(a.backend(), Backend::Sqlite);
    }
}
