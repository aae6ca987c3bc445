//! TLS to a real server (`tls`): the cluster scripts/test starts listens
//! on 127.0.0.1 with TLS only (`LEV_TEST_POSTGRES_TLS`, key-value), its
//! certificate for localhost and 127.0.0.1 signed by a CA of its own
//! (`LEV_TEST_POSTGRES_CA`), plain TCP refused by its `pg_hba.conf`, and
//! the role `levcert` let in by a client certificate
//! (`LEV_TEST_POSTGRES_CLIENT_CERT`, `…_KEY`). Each test in a database of
//! its own, made over the Unix socket (`TestDb`). Skipped without the
//! variables, unless `CI` is set.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::tests::TestDb;
use super::*;
use crate::journal::Journal;
use crate::journal::tests::{entry, meta};

const REQUIRED: &str = "PostgreSQL with TLS is required in CI (scripts/test starts one and \
                        sets LEV_TEST_POSTGRES_TLS and LEV_TEST_POSTGRES_CA)";

/// The TLS server's key-value base and its CA's file.
struct TlsServer {
    base: String,
    ca: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn tls_server() -> Option<TlsServer> {
    match (var("LEV_TEST_POSTGRES_TLS"), var("LEV_TEST_POSTGRES_CA")) {
        (Some(base), Some(ca)) => Some(TlsServer { base, ca }),
        _ if std::env::var_os("CI").is_some() => panic!("{REQUIRED}"),
        _ => None,
    }
}

/// A database of the test's own and the TLS server.
async fn setup() -> Option<(TestDb, TlsServer)> {
    let server = tls_server()?;
    Some((TestDb::new().await?, server))
}

impl TlsServer {
    /// The test's database over TCP, with `params` (a later key wins).
    fn url(&self, db: &TestDb, params: &str) -> String {
        format!("{} dbname={} {params}", self.base, db.name)
    }

    /// `params` with the server's CA as the root.
    fn verified(&self, db: &TestDb, params: &str) -> String {
        self.url(db, &format!("sslrootcert={} {params}", self.ca))
    }

    /// The test's database at `host` (tokio-postgres adds a second
    /// `host=` to the first rather than replace it), the CA as the root.
    fn verified_at(&self, db: &TestDb, host: &str, params: &str) -> String {
        let config: Config = self.base.parse().unwrap();
        format!(
            "{host} port={} user=lev dbname={} sslrootcert={} {params}",
            config.get_ports()[0],
            db.name,
            self.ca
        )
    }
}

/// Whether the store's own connection is encrypted, and with what.
async fn ssl_of(store: &PgStore) -> (bool, Option<String>) {
    let conn = store.conn().await.unwrap();
    let row = conn
        .client()
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// `PgStore::connect`'s error, as lev shows it.
async fn refused(url: &str) -> String {
    match PgStore::connect(url).await {
        Ok(_) => panic!("connected with {url}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn verify_full_with_the_ca_connects_and_a_journal_works_over_tls() {
    let Some((db, tls)) = setup().await else {
        return;
    };
    let url = tls.verified(&db, "sslmode=verify-full");
    let store = PgStore::connect(&url).await.unwrap();
    assert_eq!(ssl_of(&store).await, (true, Some("TLSv1.3".into())));
    // The server as errors name it: no TLS parameters, no password.
    assert!(store.server().contains("127.0.0.1:"), "{}", store.server());

    // The whole journal: its writer, reads, heartbeat and listeners.
    let journal = Journal::open_url(&url).await.unwrap();
    let mut follow = store.listen().await.unwrap();
    let run = RunId::new();
    journal.create_run(meta(&run)).await.unwrap();
    journal
        .append(&run, vec![entry("a", "1"), entry("b", "2")], None)
        .await
        .unwrap();
    let read = journal.read(&run, crate::protocol::Seq(1)).await.unwrap();
    assert_eq!(read.len(), 2);
    let (noted, last) = tokio::time::timeout(Duration::from_secs(30), follow.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((noted, last), (run.clone(), 2));
    // Every connection lev keeps to the database is encrypted.
    let rows = db
        .sql()
        .await
        .query(
            "SELECT a.application_name, s.ssl FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let seen: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(seen.len() >= 5, "{seen:?}");
    assert!(seen.iter().all(|(_, ssl)| *ssl), "{seen:?}");
    assert!(seen.iter().any(|(app, _)| app == "lev-listen"), "{seen:?}");
}

#[tokio::test]
async fn verify_full_checks_the_host_name() {
    let Some((db, tls)) = setup().await else {
        return;
    };
    // The certificate is for localhost and 127.0.0.1.
    let url = tls.verified_at(&db, "host=localhost", "sslmode=verify-full");
    let store = PgStore::connect(&url).await.unwrap();
    assert!(ssl_of(&store).await.0);
    // The same server under a name its certificate does not carry.
    let at_wrong = "host=wrong.example hostaddr=127.0.0.1";
    let err = refused(&tls.verified_at(&db, at_wrong, "sslmode=verify-full")).await;
    assert!(err.contains("host name mismatch"), "{err}");
    assert!(err.contains("wrong.example"), "{err}");
    assert!(err.contains("on wrong.example:"), "names the server: {err}");
    // verify-ca checks the chain only.
    let ca = tls.verified_at(&db, at_wrong, "sslmode=verify-ca");
    let store = PgStore::connect(&ca).await.unwrap();
    assert!(ssl_of(&store).await.0);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_not_trusted() {
    let Some((db, tls)) = setup().await else {
        return;
    };
    let other = tempfile::tempdir().unwrap();
    let root = other.path().join("other-ca.pem");
    std::fs::write(&root, super::tls::tests::CERT).unwrap();
    for mode in ["verify-ca", "verify-full", "require"] {
        let url = tls.url(
            &db,
            &format!(
                "sslmode={mode} sslrootcert={} password=s3cret",
                root.display()
            ),
        );
        let err = refused(&url).await;
        assert!(err.contains("not trusted (unknown issuer)"), "{err}");
        assert!(err.contains(&format!("sslmode={mode}")), "{err}");
        assert!(err.contains(&root.display().to_string()), "{err}");
        assert!(err.contains("PostgreSQL database lev_test_"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}

#[tokio::test]
async fn require_and_prefer_connect_without_checking_the_certificate() {
    let Some((db, tls)) = setup().await else {
        return;
    };
    for params in ["sslmode=require", "sslmode=prefer", "sslmode=allow", ""] {
        let store = PgStore::connect(&tls.url(&db, params)).await.unwrap();
        assert!(ssl_of(&store).await.0, "{params}");
    }
}

#[tokio::test]
async fn plain_tcp_is_refused_by_the_server_in_its_words() {
    let Some((db, tls)) = setup().await else {
        return;
    };
    let err = refused(&tls.url(&db, "sslmode=disable")).await;
    assert!(err.contains("pg_hba.conf rejects connection"), "{err}");
    assert!(err.contains("no encryption"), "{err}");
}

#[tokio::test]
async fn a_unix_socket_ignores_sslmode_as_libpq_does() {
    let Some((db, _)) = setup().await else {
        return;
    };
    for params in ["sslmode=require", "sslmode=verify-full", "sslmode=disable"] {
        let store = PgStore::connect(&format!("{} {params}", db.url))
            .await
            .unwrap();
        assert!(!ssl_of(&store).await.0, "{params}");
    }
}

#[tokio::test]
async fn a_client_certificate_logs_in_a_role_that_wants_one() {
    let Some((db, tls)) = setup().await else {
        return;
    };
    let (Some(cert), Some(key)) = (
        var("LEV_TEST_POSTGRES_CLIENT_CERT"),
        var("LEV_TEST_POSTGRES_CLIENT_KEY"),
    ) else {
        assert!(std::env::var_os("CI").is_none(), "{REQUIRED}");
        return;
    };
    // levcert may not create lev's tables in the test's database.
    db.sql()
        .await
        .batch_execute(&format!("ALTER DATABASE {} OWNER TO levcert", db.name))
        .await
        .unwrap();
    let url = tls.verified(
        &db,
        &format!("sslmode=verify-full user=levcert sslcert={cert} sslkey={key}"),
    );
    let store = PgStore::connect(&url).await.unwrap();
    assert!(ssl_of(&store).await.0);
    store.create_run(&meta(&RunId::new())).await.unwrap();
    // Without it, the server says no.
    let err = refused(&tls.verified(&db, "sslmode=verify-full user=levcert")).await;
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn a_server_without_tls_fails_require_in_words() {
    // A stand-in server that answers PostgreSQL's TLS request with "no".
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 8];
            if socket.read_exact(&mut request).await.is_ok() {
                let _ = socket.write_all(b"N").await;
            }
        }
    });
    let err = refused(&format!(
        "host=127.0.0.1 port={port} user=lev sslmode=require connect_timeout=5"
    ))
    .await;
    assert!(
        err.contains("the server does not support TLS, and sslmode=require requires it"),
        "{err}"
    );
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
