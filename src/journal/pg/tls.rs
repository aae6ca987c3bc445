//! TLS to the server, with libpq's `sslmode` rules (users know them from
//! psql): tokio-postgres parses the connection string but knows only
//! `sslmode` disable, prefer and require, and verifies nothing itself, so
//! lev takes its TLS parameters out of the string first (`split`), hands
//! tokio-postgres the rest, and enforces them with a rustls verifier of
//! its own (`Settings::apply`).
//!
//! - `disable`: no TLS. `allow` and `prefer` (the default): TLS when the
//!   server offers it, its certificate not verified (a failed check would
//!   only make libpq retry without TLS, so `prefer` protects nothing).
//! - `require`: TLS or no connection, not verified; with a root
//!   certificate (`sslrootcert=FILE`, or `~/.postgresql/root.crt` when it
//!   exists) it is `verify-ca`, as libpq's `require` is.
//! - `verify-ca`: the chain is verified against the roots;
//!   `verify-full`: the host name (`host=`) too. Both need roots:
//!   `sslrootcert=FILE` (PEM, one or more certificates),
//!   `sslrootcert=system` (the system's, as libpq 16: it makes the
//!   default `verify-full` and refuses weaker modes), or
//!   `~/.postgresql/root.crt`.
//! - A client certificate: `sslcert=` and `sslkey=` (PEM; an encrypted
//!   key is not supported), or libpq's `~/.postgresql/postgresql.crt` and
//!   `.key` when they exist.
//! - Unix sockets never use TLS (the server refuses it there; libpq
//!   ignores `sslmode` for them).
//!
//! Unverified modes still check the handshake's signatures (the server
//! holds the key of the certificate it shows), as libpq's `require` does.
//! The crypto is rustls's aws-lc-rs provider, the one reqwest brings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::Config;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`s (`allow` is taken as `prefer`: lev never starts
/// without TLS only to retry with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(value: &str) -> Result<Mode, String> {
        Ok(match value {
            "disable" => Mode::Disable,
            "allow" | "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode \"{other}\" is not one of libpq's: disable, allow, prefer, \
                     require, verify-ca, verify-full"
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS parameters lev enforces itself, as the connection string gave
/// them (a later one wins, as in libpq).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    pub(super) mode: Option<Mode>,
    pub(super) root_cert: Option<String>,
    pub(super) cert: Option<String>,
    pub(super) key: Option<String>,
}

impl Settings {
    /// The parameters lev takes out.
    const KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

    /// Takes the value of `key`, one of `KEYS`.
    fn take(&mut self, key: &str, value: String) -> Result<(), String> {
        match key {
            "sslmode" => self.mode = Some(Mode::parse(&value)?),
            "sslrootcert" => self.root_cert = Some(value),
            "sslcert" => self.cert = Some(value),
            _ => self.key = Some(value),
        }
        Ok(())
    }
}

/// Splits `sslmode`, `sslrootcert`, `sslcert` and `sslkey` out of a
/// `postgres://` URL (query parameters) or key-value string, returning the
/// rest for tokio-postgres to parse. Errors never quote the string (it may
/// hold a password).
pub(super) fn split(url: &str) -> Result<(String, Settings), String> {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            return split_url(scheme, rest);
        }
    }
    split_key_values(url)
}

/// A URL's query parameters, found as tokio-postgres finds them: the
/// credentials end at the first `@`, the query starts at the first `?`
/// after them, each parameter is `key=value` up to the next `&`.
fn split_url(scheme: &str, rest: &str) -> Result<(String, Settings), String> {
    let after_credentials = rest.find('@').map_or(0, |at| at + 1);
    let Some(q) = rest[after_credentials..].find('?') else {
        return Ok((format!("{scheme}{rest}"), Settings::default()));
    };
    let (main, mut query) = rest.split_at(after_credentials + q);
    query = &query[1..];
    let mut settings = Settings::default();
    let mut kept = Vec::new();
    while !query.is_empty() {
        let Some((key, tail)) = query.split_once('=') else {
            // tokio-postgres says what is wrong with it.
            kept.push(query);
            break;
        };
        let (value, tail) = tail.split_once('&').unwrap_or((tail, ""));
        let decoded = percent_decode_str(key).decode_utf8_lossy();
        if Settings::KEYS.contains(&decoded.as_ref()) {
            let value = percent_decode_str(value).decode_utf8().map_err(|_| {
                format!("{decoded} in the connection URL is not UTF-8 once percent-decoded")
            })?;
            settings.take(&decoded, value.into_owned())?;
        } else {
            kept.push(&query[..key.len() + 1 + value.len()]);
        }
        query = tail;
    }
    let mut out = format!("{scheme}{main}");
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    Ok((out, settings))
}

/// A key-value string (`host=… sslmode=…`), tokenized as libpq and
/// tokio-postgres do: `key = value`, the value bare (a backslash escapes
/// the next character) or in single quotes; the pairs that are not lev's
/// are kept as written.
fn split_key_values(s: &str) -> Result<(String, Settings), String> {
    let mut settings = Settings::default();
    let mut kept = Vec::new();
    let mut chars = s.char_indices().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        while chars
            .next_if(|&(_, c)| !c.is_whitespace() && c != '=')
            .is_some()
        {}
        let key_end = chars.peek().map_or(s.len(), |&(i, _)| i);
        let key = &s[start..key_end];
        skip_ws(&mut chars);
        if chars.next_if(|&(_, c)| c == '=').is_none() {
            // Not named: a stray word may be a password.
            return Err(format!(
                "connection string: the word at byte {start} is no `key=value`"
            ));
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next() {
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                    Some((_, c)) => value.push(c),
                    None => {
                        return Err(format!(
                            "connection string: the quoted value of \"{key}\" is not closed"
                        ));
                    }
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next().map(|(_, c)| c));
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return Err(format!(
                    "connection string: parameter \"{key}\" has no value"
                ));
            }
        }
        let end = chars.peek().map_or(s.len(), |&(i, _)| i);
        if Settings::KEYS.contains(&key) {
            settings.take(key, value)?;
        } else {
            kept.push(&s[start..end]);
        }
    }
    Ok((kept.join(" "), settings))
}

/// How lev connects with TLS: the connector tokio-postgres drives and what
/// errors say about it.
#[derive(Clone)]
pub(super) struct Tls {
    pub(super) connector: MakeRustlsConnect,
    /// The mode in force (`require` with roots is `verify-ca`); `Disable`
    /// on Unix sockets.
    pub(super) mode: Mode,
    /// The mode the connection string asked for.
    asked: Mode,
    /// Where the roots came from, for errors (`None`: not verified).
    roots: Option<String>,
}

impl Settings {
    /// Sets `config`'s sslmode for tokio-postgres (`require` for every
    /// mode that needs TLS) and builds the connector that enforces the
    /// rest. `home`: where libpq's `~/.postgresql` files are looked for.
    /// Files are read here, once: a missing or unreadable one is an error
    /// now, not at each connection.
    pub(super) fn apply(self, config: &mut Config, home: Option<&Path>) -> Result<Tls, String> {
        let system = self.root_cert.as_deref() == Some("system");
        let asked = match self.mode {
            Some(mode) => mode,
            // libpq 16: system roots are only worth a full check.
            None if system => Mode::VerifyFull,
            None => Mode::Prefer,
        };
        if system && asked != Mode::VerifyFull {
            return Err(format!(
                "sslmode={} may not be used with sslrootcert=system (use verify-full)",
                asked.name()
            ));
        }
        // Only a host's name can be checked against a certificate: with
        // `hostaddr` alone, the address stands for it (what the TLS
        // handshake is told; verify-full then wants it in the certificate).
        if config.get_hosts().is_empty() {
            let addrs: Vec<String> = config
                .get_hostaddrs()
                .iter()
                .map(|a| a.to_string())
                .collect();
            for addr in addrs {
                config.host(&addr);
            }
        }
        let tcp = !config.get_hostaddrs().is_empty()
            || config.get_hosts().iter().any(|h| matches!(h, Host::Tcp(_)));
        let socket = config.get_hostaddrs().is_empty()
            && config
                .get_hosts()
                .iter()
                .any(|h| !matches!(h, Host::Tcp(_)));
        if !tcp || asked == Mode::Disable {
            // No TLS: on a Unix socket the server would refuse it.
            config.ssl_mode(SslMode::Disable);
            return unverified(Mode::Disable);
        }
        if socket && asked != Mode::Prefer {
            return Err(format!(
                "sslmode={} with both Unix sockets and TCP hosts: TLS is not used on a \
                 Unix socket (libpq ignores sslmode there) and lev cannot mix the two \
                 in one connection string; give only the TCP hosts, or only the sockets",
                asked.name()
            ));
        }
        let dot = home.map(|h| h.join(".postgresql"));
        let default_file = |name: &str| dot.as_ref().map(|d| d.join(name)).filter(|p| p.exists());
        let root_file = match self.root_cert.as_deref() {
            Some("system") => None,
            Some(path) => Some(PathBuf::from(path)),
            None => default_file("root.crt"),
        };
        let mode = match asked {
            // libpq: `require` with a root certificate is `verify-ca`.
            Mode::Require if root_file.is_some() => Mode::VerifyCa,
            mode => mode,
        };
        config.ssl_mode(if mode == Mode::Prefer {
            SslMode::Prefer
        } else {
            SslMode::Require
        });
        let (roots, named) = match mode {
            Mode::Disable | Mode::Prefer | Mode::Require => (None, None),
            Mode::VerifyCa | Mode::VerifyFull => match (system, root_file) {
                (true, _) => (Some(system_roots()?), Some("the system's roots".to_owned())),
                (false, Some(file)) => {
                    let named = format!("sslrootcert {}", file.display());
                    (Some(file_roots(&file, &named)?), Some(named))
                }
                (false, None) => {
                    return Err(format!(
                        "sslmode={} needs root certificates to check the server's against: \
                         give sslrootcert=/path/to/ca.pem (PEM) or sslrootcert=system (the \
                         system's roots){}",
                        mode.name(),
                        match &dot {
                            Some(d) => format!("; {} does not exist", d.join("root.crt").display()),
                            None => String::new(),
                        }
                    ));
                }
            },
        };
        let builder = builder(roots, mode == Mode::VerifyFull)?;
        let cert = match self.cert {
            Some(cert) => Some(PathBuf::from(cert)),
            None => default_file("postgresql.crt"),
        };
        let config = match cert {
            Some(cert) => {
                let key = match (self.key, &dot) {
                    (Some(key), _) => PathBuf::from(key),
                    (None, Some(dot)) => dot.join("postgresql.key"),
                    (None, None) => {
                        return Err(format!(
                            "sslcert {} is given but no sslkey (and no home directory for \
                             ~/.postgresql/postgresql.key)",
                            cert.display()
                        ));
                    }
                };
                let chain = certificates(&cert, &format!("sslcert {}", cert.display()))?;
                let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| {
                    format!(
                        "sslkey {}: no usable private key ({e}; PEM, unencrypted)",
                        key.display()
                    )
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("sslcert {} with its key: {e}", cert.display()))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Tls {
            connector: MakeRustlsConnect::new(config),
            mode,
            asked,
            roots: named,
        })
    }
}

/// A connector for no TLS: tokio-postgres wants one, it is never used.
fn unverified(mode: Mode) -> Result<Tls, String> {
    let config = builder(None, false)?.with_no_client_auth();
    Ok(Tls {
        connector: MakeRustlsConnect::new(config),
        mode,
        asked: mode,
        roots: None,
    })
}

/// A client configuration on rustls's aws-lc-rs provider whose verifier
/// checks the server's certificate against `roots` (none: not at all),
/// with its host name when `check_name`; a client certificate comes next.
fn builder(
    roots: Option<RootCertStore>,
    check_name: bool,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(Verifier {
        roots: roots.map(Arc::new),
        check_name,
        algs: provider.signature_verification_algorithms,
    });
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier))
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
        return Err(format!(
            "sslrootcert=system: no root certificates found on this system{}",
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join("; "))
            }
        ));
    }
    Ok(roots)
}

fn file_roots(file: &Path, named: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in certificates(file, named)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| format!("{named}: certificate {} is not usable: {e}", i + 1))?;
    }
    Ok(roots)
}

/// The certificates of a PEM file, at least one.
fn certificates(file: &Path, named: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{named}: cannot read PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{named}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// The server's certificate as the mode wants it checked: against
/// `roots` (none: not at all), with the host name when `check_name`. The
/// handshake's signatures are always checked.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algs.all,
            )?;
            if self.check_name {
                verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algs.supported_schemes()
    }
}

impl Tls {
    /// What a failed connection says: for TLS failures, what failed in
    /// words; otherwise PostgreSQL's (`words`).
    pub(super) fn explain(&self, e: &tokio_postgres::Error) -> String {
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(rustls) = s
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .or_else(|| s.downcast_ref::<rustls::Error>())
            {
                return self.tls_failure(rustls);
            }
            if s.to_string() == "server does not support TLS" {
                return format!(
                    "the server does not support TLS, and sslmode={} requires it",
                    self.mode.name()
                );
            }
            source = s.source();
        }
        super::words(e)
    }

    fn tls_failure(&self, e: &rustls::Error) -> String {
        let roots = self.roots.as_deref().unwrap_or("the roots");
        let mode = match (self.asked, self.mode) {
            (Mode::Require, Mode::VerifyCa) => {
                "sslmode=require, which is verify-ca with a root certificate".to_owned()
            }
            (_, mode) => format!("sslmode={}", mode.name()),
        };
        match e {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "TLS: the server's certificate is not trusted (unknown issuer): no \
                 certificate in {roots} signed it ({mode})"
            ),
            rustls::Error::InvalidCertificate(
                why @ (CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. }),
            ) => format!(
                "TLS: host name mismatch: the server's certificate is not for the host \
                 lev connected to ({mode}): {why}"
            ),
            rustls::Error::InvalidCertificate(why) => {
                format!("TLS: the server's certificate is not valid ({mode}): {why}")
            }
            other => format!("TLS handshake with the server failed ({mode}): {other}"),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn settings(mode: Option<Mode>, root_cert: Option<&str>) -> Settings {
        Settings {
            mode,
            root_cert: root_cert.map(str::to_owned),
            ..Settings::default()
        }
    }

    #[test]
    fn every_libpq_sslmode_is_taken_from_either_form() {
        for (value, mode) in [
            ("disable", Mode::Disable),
            ("allow", Mode::Prefer),
            ("prefer", Mode::Prefer),
            ("require", Mode::Require),
            ("verify-ca", Mode::VerifyCa),
            ("verify-full", Mode::VerifyFull),
        ] {
            let (rest, got) = split(&format!("host=db.example sslmode={value} user=lev")).unwrap();
            assert_eq!(rest, "host=db.example user=lev");
            assert_eq!(got, settings(Some(mode), None), "{value}");
            let (rest, got) =
                split(&format!("postgres://lev@db.example/lev?sslmode={value}")).unwrap();
            assert_eq!(rest, "postgres://lev@db.example/lev");
            assert_eq!(got, settings(Some(mode), None), "{value}");
            // What is left parses.
            rest.parse::<Config>().unwrap();
        }
    }

    #[test]
    fn an_unknown_sslmode_is_an_error_naming_it() {
        for url in [
            "host=h sslmode=verify",
            "postgres://u:s3cret@h/db?sslmode=verify",
            "postgresql://h?application_name=x&sslmode=verify&connect_timeout=3",
        ] {
            let err = split(url).unwrap_err();
            assert!(err.contains("\"verify\""), "{err}");
            assert!(err.contains("verify-full"), "{err}");
        }
    }

    #[test]
    fn url_parameters_are_taken_out_and_the_rest_kept_as_written() {
        let (rest, got) = split(
            "postgres://lev:p%40ss@db.example:5433/lev?connect_timeout=3&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Flev%2Fca.pem&application_name=a%20b&sslcert=/c.pem&sslkey=/k.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://lev:p%40ss@db.example:5433/lev?connect_timeout=3&application_name=a%20b"
        );
        assert_eq!(
            got,
            Settings {
                mode: Some(Mode::VerifyFull),
                root_cert: Some("/etc/lev/ca.pem".into()),
                cert: Some("/c.pem".into()),
                key: Some("/k.pem".into()),
            }
        );
        let config: Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(config.get_application_name(), Some("a b"));

        // Only TLS parameters: the query goes; a `?` in the password is
        // not the query's.
        let (rest, got) = split("postgres://lev:a?b@h/db?sslrootcert=system").unwrap();
        assert_eq!(rest, "postgres://lev:a?b@h/db");
        assert_eq!(got, settings(None, Some("system")));
        // No query at all.
        let (rest, got) = split("postgresql://h/db").unwrap();
        assert_eq!(
            (rest.as_str(), got),
            ("postgresql://h/db", Settings::default())
        );
        // Other parameters are tokio-postgres's to decode.
        let (rest, got) = split("postgres://h/db?host=%2Fsock%FF&sslmode=disable").unwrap();
        assert_eq!(rest, "postgres://h/db?host=%2Fsock%FF");
        assert_eq!(got.mode, Some(Mode::Disable));
        // A later one wins.
        let (_, got) = split("postgres://h/db?sslmode=disable&sslmode=require").unwrap();
        assert_eq!(got.mode, Some(Mode::Require));
    }

    #[test]
    fn key_value_pairs_are_taken_out_quoted_or_not() {
        let (rest, got) = split(
            "  host=db.example   password='it\\'s' sslmode = verify-ca \
             sslrootcert='/my certs/ca\\'s.pem' dbname=lev sslkey=/k\\ x.pem ",
        )
        .unwrap();
        assert_eq!(rest, "host=db.example password='it\\'s' dbname=lev");
        assert_eq!(
            got,
            Settings {
                mode: Some(Mode::VerifyCa),
                root_cert: Some("/my certs/ca's.pem".into()),
                cert: None,
                key: Some("/k x.pem".into()),
            }
        );
        let config: Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
        assert_eq!(config.get_dbname(), Some("lev"));
        // Nothing of lev's: the pairs are kept.
        let (rest, got) = split("host=/run/postgresql user=lev").unwrap();
        assert_eq!(rest, "host=/run/postgresql user=lev");
        assert_eq!(got, Settings::default());
    }

    #[test]
    fn a_password_never_appears_in_errors() {
        for url in [
            "host=h password=s3cret sslmode=bogus",
            "host=h password='s3cret sslmode=verify-full",
            "host=h password=s3cret sslrootcert",
            "host=h s3cret",
            "host=h password s3cret",
            "postgres://lev:s3cret@h/db?sslmode=bogus",
            "postgres://lev:s3cret@h/db?sslrootcert=%FF",
        ] {
            let err = split(url).unwrap_err();
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
        for (url, home) in [
            ("host=h password=s3cret sslmode=verify-full", None),
            (
                "host=h password=s3cret sslmode=require sslrootcert=/nowhere/ca.pem",
                None,
            ),
            (
                "postgres://lev:s3cret@h/db?sslrootcert=system&sslmode=require",
                None,
            ),
        ] {
            let err = configure(url, home).err().unwrap();
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
    }

    /// `split` and `apply` as `PgStore::connect` does them.
    fn configure(url: &str, home: Option<&Path>) -> Result<(Config, Tls), String> {
        let (rest, settings) = split(url)?;
        let mut config: Config = rest
            .parse()
            .map_err(|e: tokio_postgres::Error| e.to_string())?;
        let tls = settings.apply(&mut config, home)?;
        Ok((config, tls))
    }

    fn mode_of(url: &str, home: Option<&Path>) -> (SslMode, Mode) {
        let (config, tls) = configure(url, home).unwrap();
        (config.get_ssl_mode(), tls.mode)
    }

    /// A self-signed certificate and its key (made with `openssl req
    /// -x509`, for these tests only): a root, or a client certificate.
    pub(in crate::journal::pg) const CERT: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBkDCCATegAwIBAgIUdHemCojXuJJib4jKBlDgKpTphLowCgYIKoZIzj0EAwIw\n\
HTEbMBkGA1UEAwwSbGV2IHVuaXQgdGVzdCByb290MCAXDTI2MTIwNjEzNDM1MVoY\n\
DzIxMjYxMTEyMTM0MzUxWjAdMRswGQYDVQQDDBJsZXYgdW5pdCB0ZXN0IHJvb3Qw\n\
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARy+NG6GWNQgNg3FCBqe7ATutslDsKy\n\
EMiHgcB15OzZEAOJUV9jyWLybwmtRnk/442WxBO7YaSmRFvXQc8HlTa4o1MwUTAd\n\
BgNVHQ4EFgQUibh8Jr6eFhs4Ydj3ayQcnNxz+1cwHwYDVR0jBBgwFoAUibh8Jr6e\n\
Fhs4Ydj3ayQcnNxz+1cwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBE\n\
AiBVcz7rPVPYEwjUaH4CwIql4zNfDVIKpYPbO7OaEiUM3gIgYXT4YroB8pw+9U0X\n\
bivlSZaKjyR9ybEHEsj/O3tv/vU=\n\
-----END CERTIFICATE-----\n\
";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgtlr8mEnvKXZ2FByi\n\
KWSACSfMd/t4orCKC1La8ZbYDIuhRANCAARy+NG6GWNQgNg3FCBqe7ATutslDsKy\n\
EMiHgcB15OzZEAOJUV9jyWLybwmtRnk/442WxBO7YaSmRFvXQc8HlTa4\n\
-----END PRIVATE KEY-----\n\
";

    /// `CERT` and `KEY` as files in `dir`.
    fn pem_files(dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, CERT).unwrap();
        std::fs::write(&key, KEY).unwrap();
        (cert, key)
    }

    #[test]
    fn modes_resolve_as_libpq_resolves_them() {
        let nohome = tempfile::tempdir().unwrap();
        let home = Some(nohome.path());
        // The default is prefer, unverified.
        assert_eq!(mode_of("host=h", home), (SslMode::Prefer, Mode::Prefer));
        assert_eq!(
            mode_of("host=h sslmode=allow", home),
            (SslMode::Prefer, Mode::Prefer)
        );
        assert_eq!(
            mode_of("host=h sslmode=disable", home),
            (SslMode::Disable, Mode::Disable)
        );
        assert_eq!(
            mode_of("host=h sslmode=require", home),
            (SslMode::Require, Mode::Require)
        );
        // Unix sockets never use TLS, whatever the mode.
        for mode in ["require", "verify-full", "prefer"] {
            assert_eq!(
                mode_of(&format!("host=/run/postgresql sslmode={mode}"), home),
                (SslMode::Disable, Mode::Disable)
            );
        }
        // Verified modes want roots.
        for mode in ["verify-ca", "verify-full"] {
            let err = configure(&format!("host=h sslmode={mode}"), home)
                .err()
                .unwrap();
            assert!(err.contains("sslrootcert=system"), "{err}");
            assert!(err.contains("root.crt does not exist"), "{err}");
        }
        // libpq 16: system roots make verify-full the default and refuse
        // weaker modes.
        let err = configure("host=h sslrootcert=system sslmode=require", home)
            .err()
            .unwrap();
        assert!(err.contains("use verify-full"), "{err}");
        // A Unix socket mixed with a TCP host cannot be required TLS.
        let err = configure("host=/run/postgresql,db.example sslmode=require", home)
            .err()
            .unwrap();
        assert!(err.contains("Unix socket"), "{err}");
        assert_eq!(
            mode_of("host=/run/postgresql,db.example", home),
            (SslMode::Prefer, Mode::Prefer)
        );
        // `hostaddr` alone: the address is the name TLS is told.
        let (config, _) = configure("hostaddr=127.0.0.1 sslmode=require", home).unwrap();
        assert_eq!(config.get_hosts(), &[Host::Tcp("127.0.0.1".into())]);
    }

    #[test]
    fn root_certificates_come_from_sslrootcert_or_libpqs_file() {
        let files = tempfile::tempdir().unwrap();
        let (ca, _) = pem_files(files.path());
        let empty = tempfile::tempdir().unwrap();
        let url = format!("host=h sslmode=require sslrootcert={}", ca.display());
        // require with a root certificate is verify-ca.
        assert_eq!(
            mode_of(&url, Some(empty.path())),
            (SslMode::Require, Mode::VerifyCa)
        );
        // ~/.postgresql/root.crt stands for sslrootcert.
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".postgresql")).unwrap();
        std::fs::copy(&ca, home.path().join(".postgresql/root.crt")).unwrap();
        assert_eq!(
            mode_of("host=h sslmode=require", Some(home.path())),
            (SslMode::Require, Mode::VerifyCa)
        );
        assert_eq!(
            mode_of("host=h sslmode=verify-full", Some(home.path())),
            (SslMode::Require, Mode::VerifyFull)
        );
        // prefer never verifies.
        assert_eq!(
            mode_of("host=h", Some(home.path())),
            (SslMode::Prefer, Mode::Prefer)
        );
    }

    #[test]
    fn client_certificates_come_from_sslcert_and_sslkey_or_libpqs_files() {
        let files = tempfile::tempdir().unwrap();
        let (cert, key) = pem_files(files.path());
        let empty = tempfile::tempdir().unwrap();
        configure(
            &format!(
                "host=h sslmode=require sslcert={} sslkey={}",
                cert.display(),
                key.display()
            ),
            Some(empty.path()),
        )
        .unwrap();
        // sslcert without sslkey: libpq's ~/.postgresql/postgresql.key.
        let err = configure(
            &format!("host=h sslmode=require sslcert={}", cert.display()),
            Some(empty.path()),
        )
        .err()
        .unwrap();
        assert!(err.contains("postgresql.key"), "{err}");
        // A certificate where a key should be.
        let err = configure(
            &format!(
                "host=h sslmode=require sslcert={} sslkey={}",
                cert.display(),
                cert.display()
            ),
            Some(empty.path()),
        )
        .err()
        .unwrap();
        assert!(err.contains("no usable private key"), "{err}");
        // libpq's default files are used when they exist.
        let home = tempfile::tempdir().unwrap();
        let dot = home.path().join(".postgresql");
        std::fs::create_dir(&dot).unwrap();
        std::fs::copy(&cert, dot.join("postgresql.crt")).unwrap();
        std::fs::write(dot.join("postgresql.key"), "damaged").unwrap();
        let err = configure("host=h sslmode=require", Some(home.path()))
            .err()
            .unwrap();
        assert!(err.contains("postgresql.key"), "{err}");
        std::fs::copy(&key, dot.join("postgresql.key")).unwrap();
        configure("host=h sslmode=require", Some(home.path())).unwrap();
    }

    #[test]
    fn unreadable_root_and_client_files_are_errors_naming_them() {
        let empty = tempfile::tempdir().unwrap();
        let home = Some(empty.path());
        let err = configure("host=h sslmode=verify-ca sslrootcert=/nowhere/ca.pem", home)
            .err()
            .unwrap();
        assert!(err.contains("sslrootcert /nowhere/ca.pem"), "{err}");
        let not_pem = empty.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate\n").unwrap();
        let err = configure(
            &format!(
                "host=h sslmode=verify-full sslrootcert={}",
                not_pem.display()
            ),
            home,
        )
        .err()
        .unwrap();
        assert!(err.contains("no PEM certificate"), "{err}");
        let err = configure(
            "host=h sslmode=require sslcert=/nowhere/c.pem sslkey=/nowhere/k.pem",
            home,
        )
        .err()
        .unwrap();
        assert!(err.contains("sslcert /nowhere/c.pem"), "{err}");
        // Not asked for TLS: nothing is read.
        configure("host=h sslmode=disable sslrootcert=/nowhere/ca.pem", home).unwrap();
        configure(
            "host=/tmp sslmode=verify-full sslrootcert=/nowhere/ca.pem",
            home,
        )
        .unwrap();
    }
}
