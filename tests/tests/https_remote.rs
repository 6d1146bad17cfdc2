//! A smart-HTTP remote over TLS (the harness's `git_http` server behind rustls, with a certificate for
//! 127.0.0.1 signed by a CA made for the test): the exporter trusts the CA named by `SSL_CERT_FILE`, pushes with
//! the credentials file, and without that CA refuses the remote (an export error that is retried, ready stays
//! true, nothing reaches the remote).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use railyard_tests::git_http::{Connection, GitHttpServer};
use railyard_tests::{wait_readyz, Server};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};

/// A TLS session over one accepted connection.
struct Tls(rustls::StreamOwned<rustls::ServerConnection, TcpStream>);

impl Read for Tls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Tls {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Connection for Tls {
    fn close(&mut self) {
        self.0.conn.send_close_notify();
        let _ = self.0.flush();
        let _ = self.0.sock.shutdown(std::net::Shutdown::Write);
    }
}

/// A CA made for the test (its certificate as PEM in `dir/ca.pem`) and a server certificate it signed for the
/// names `sans` (host names or IP addresses); returns the rustls server config and the CA file.
fn tls_setup(dir: &Path, sans: &[&str]) -> (Arc<rustls::ServerConfig>, PathBuf) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.distinguished_name.push(DnType::CommonName, "railyard test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).expect("write ca.pem");

    let server_key = KeyPair::generate().expect("server key");
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("server params");
    params.distinguished_name.push(DnType::CommonName, sans[0]);
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server_cert = params.signed_by(&server_key, &issuer).expect("server certificate");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .expect("server TLS config");
    (Arc::new(config), ca_file)
}

/// A temp dir with an empty bare `remote.git` served over https behind Basic auth with a certificate for
/// `sans`, and the file of the CA that signed it.
fn remote_behind_tls(sans: &[&str], user: &str, password: &str) -> (tempfile::TempDir, GitHttpServer, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    git2::Repository::init_bare(dir.path().join("remote.git")).expect("bare remote");
    let (config, ca_file) = tls_setup(dir.path(), sans);
    let wrap = move |tcp: TcpStream| -> io::Result<Box<dyn Connection>> {
        let conn = rustls::ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        Ok(Box::new(Tls(rustls::StreamOwned::new(conn, tcp))))
    };
    let server = GitHttpServer::start_wrapped(dir.path(), user, password, "https", Arc::new(wrap));
    (dir, server, ca_file)
}

/// A credentials file (git's credential store format) in `dir`.
fn credentials_file(dir: &Path, line: &str) -> PathBuf {
    let path = dir.join("git-credentials");
    std::fs::write(&path, format!("{line}\n")).expect("write credentials");
    path
}

/// Creates `dev` and releases `web` there; returns the release's commit.
fn create_env_and_release(s: &Server) -> String {
    s.create_env("dev", json!({"latest": true}), None);
    let r = s.release("web", None, &[("dev", "kind: Deployment\n")]);
    r.assert_status(201);
    r.commit().expect("release commit")
}

/// Waits for repeated export failures (ready staying true), asserts nothing was pushed or even requested, and
/// returns `last_error`.
fn assert_refused_before_any_request(s: &Server, https: &GitHttpServer) -> String {
    let ready = wait_readyz(s, Duration::from_secs(10), "repeated certificate failures", |e| {
        e["consecutive_failures"].as_u64().is_some_and(|n| n >= 2) && e["last_error"].is_string()
    });
    assert_eq!(ready["export"]["pending_commits"], 2, "{ready}");
    assert_eq!(ready["export"]["exported_commit"], Value::Null, "{ready}");
    assert_eq!(ready["export"]["stopped"], Value::Null, "{ready}");
    assert_eq!(s.remote_head(), None, "something reached the remote over an untrusted connection");
    // The client connected, saw the certificate and hung up: no request (so no credentials) reached the server.
    assert!(https.count(|s| &s.connections) >= 2, "the exporter never connected: {:?}", https.errors());
    assert_eq!(https.count(|s| &s.requests), 0, "{}", https.log());
    s.assert_healthy();
    ready["export"]["last_error"].as_str().unwrap().to_owned()
}

#[test]
fn pushes_over_https_trusting_the_ca_of_ssl_cert_file() {
    let (dir, https, ca_file) = remote_behind_tls(&["127.0.0.1", "localhost"], "alice", "tls-s3cret");
    let creds = credentials_file(dir.path(), &format!("https://alice:tls-s3cret@127.0.0.1:{}", https.port));
    let url = https.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let s = Server::start_in_with_git_url_env(
        dir,
        &url,
        &["--git-credentials", creds.to_str().unwrap()],
        &[("SSL_CERT_FILE", ca_file.to_str().unwrap())],
    );

    let commit = create_env_and_release(&s);
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(
        s.remote_file("environments/dev/applications/web/manifests/manifests.yaml").as_deref(),
        Some("kind: Deployment\n")
    );
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("1"));
    assert_eq!(s.remote_commit_count(), 2);
    // It went through the TLS server, challenged first and then with the file's credentials.
    https.assert_authenticated_push();
    wait_readyz(&s, Duration::from_secs(10), "export caught up", |e| {
        e["last_error"].is_null() && e["pending_commits"] == 0 && e["exported_commit"] == commit.as_str()
    });
    for line in s.logs() {
        assert!(!line.contains("tls-s3cret"), "secret in the logs: {line}");
    }
}

#[test]
fn an_untrusted_certificate_is_an_export_error_and_nothing_is_pushed() {
    let (dir, https, _ca_file) = remote_behind_tls(&["127.0.0.1", "localhost"], "alice", "tls-s3cret");
    let creds = credentials_file(dir.path(), &format!("https://alice:tls-s3cret@127.0.0.1:{}", https.port));
    // No SSL_CERT_FILE naming the test's CA: the certificate chains to nothing libgit2 trusts. (Should the
    // machine set SSL_CERT_FILE itself, the harness passes it on: it does not hold this test's CA either.)
    let s = Server::start_in_with_git_url(dir, https.url(), &["--git-credentials", creds.to_str().unwrap()]);

    let commit = create_env_and_release(&s);
    assert_eq!(s.local_head().map(|h| h.to_string()), Some(commit));
    let error = assert_refused_before_any_request(&s, &https);
    assert!(error.to_ascii_lowercase().contains("certificate"), "last_error: {error}");
}

/// Serves the remote with a certificate for `sans` from a CA the exporter trusts; returns `last_error` once
/// the exporter refused it repeatedly (see [`assert_refused_before_any_request`]).
fn refused_with_a_trusted_ca(sans: &[&str]) -> String {
    let (dir, https, ca_file) = remote_behind_tls(sans, "alice", "tls-s3cret");
    let creds = credentials_file(dir.path(), &format!("https://alice:tls-s3cret@127.0.0.1:{}", https.port));
    let s = Server::start_in_with_git_url_env(
        dir,
        https.url(),
        &["--git-credentials", creds.to_str().unwrap()],
        &[("SSL_CERT_FILE", ca_file.to_str().unwrap())],
    );
    let commit = create_env_and_release(&s);
    assert_eq!(s.local_head().map(|h| h.to_string()), Some(commit));
    assert_refused_before_any_request(&s, &https)
}

#[test]
fn a_certificate_for_another_host_is_refused_even_from_a_trusted_ca() {
    // The remote is https://127.0.0.1:PORT; the certificate names another address (192.0.2.1 is a
    // documentation address, only written in the certificate, never connected to) and a host name.
    let error = refused_with_a_trusted_ca(&["192.0.2.1", "git.example.com"]);
    assert!(error.contains("hostname does not match certificate"), "last_error: {error}");

    // A certificate with no IP address among its names is refused for an IP URL too. libgit2 (1.9) words
    // this one badly: its fallback to the subject's common name fails and reports
    // "SSL error: received early EOF", so only the refusal is asserted here.
    let error = refused_with_a_trusted_ca(&["git.example.com"]);
    assert!(error.starts_with("git: SSL error") || error.contains("certificate"), "last_error: {error}");
}
