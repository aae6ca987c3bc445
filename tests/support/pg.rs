//! A PostgreSQL database of a test's own on the server `LEV_TEST_POSTGRES`
//! names (scripts/test starts one), dropped when the test ends, as
//! `journal::pg`'s unit tests have it. Without the variable a test skips,
//! unless `CI` is set: there PostgreSQL is required.

#![allow(dead_code)]

use tokio_postgres::NoTls;

const REQUIRED: &str =
    "PostgreSQL is required in CI (scripts/test starts one and sets LEV_TEST_POSTGRES)";

/// A database of the test's own; `url` is what `lev --journal` takes.
pub struct PgDb {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDb {
    /// `None` (the test skips) without a server on a developer's machine.
    pub fn new() -> Option<PgDb> {
        let admin = match std::env::var("LEV_TEST_POSTGRES") {
            Ok(url) if !url.trim().is_empty() => url,
            _ if std::env::var_os("CI").is_some() => panic!("{REQUIRED}"),
            _ => return None,
        };
        let name = format!("lev_test_{:016x}", rand::random::<u64>());
        sql(&admin, &format!("CREATE DATABASE {name}"));
        let url = with_dbname(&admin, &name);
        Some(PgDb { admin, name, url })
    }

    /// The test's database over TCP and TLS, on the server
    /// `LEV_TEST_POSTGRES_TLS` names (scripts/test's cluster on 127.0.0.1),
    /// its CA `LEV_TEST_POSTGRES_CA` the root, with `params`; `None` (the
    /// test skips) without them on a developer's machine.
    pub fn tls_url(&self, params: &str) -> Option<String> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (var("LEV_TEST_POSTGRES_TLS"), var("LEV_TEST_POSTGRES_CA")) {
            (Some(base), Some(ca)) => Some(format!(
                "{base} dbname={} sslrootcert={ca} {params}",
                self.name
            )),
            _ if std::env::var_os("CI").is_some() => {
                panic!(
                    "PostgreSQL with TLS is required in CI (scripts/test sets LEV_TEST_POSTGRES_TLS)"
                )
            }
            _ => None,
        }
    }

    /// Runs `statement` in the test's database, behind lev's back (to
    /// damage what lev wrote, say).
    pub fn execute(&self, statement: &str) {
        sql(&self.url, statement);
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // FORCE ends the sessions a killed lev may have left.
        sql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs `statement` on the server `url` names, on a thread and runtime
/// of its own (the test may be running on a runtime).
fn sql(url: &str, statement: &str) {
    let (url, statement) = (url.to_owned(), statement.to_owned());
    let done = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute(&statement).await.unwrap();
        });
    })
    .join();
    if let Err(panic) = done {
        std::panic::resume_unwind(panic);
    }
}

/// `base` pointed at database `name`, whether a URL or key-value string.
fn with_dbname(base: &str, name: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = base.strip_prefix(scheme) {
            let (main, query) = match rest.split_once('?') {
                Some((main, query)) => (main, Some(query)),
                None => (rest, None),
            };
            let authority = main.split('/').next().unwrap_or_default();
            let mut url = format!("{scheme}{authority}/{name}");
            if let Some(query) = query {
                url.push('?');
                url.push_str(query);
            }
            return url;
        }
    }
    // A later key wins.
    format!("{base} dbname={name}")
}
