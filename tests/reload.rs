//! SIGHUP reads the TLS certificate and the token key file again, against
//! the real binary: new TLS connections get the new certificate while a
//! connection opened before stays open and working; a broken certificate
//! file is refused with a log line and the server goes on serving the one
//! it had; after `gotalk rotate-key` and SIGHUP new tokens carry the new
//! key and old ones still open, until their key's line is deleted and the
//! file read again; a broken key file leaves the keys in use.

mod common;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a reload may take to show in the log (it takes milliseconds).
const RELOAD_WAIT: Duration = Duration::from_secs(20);

/// Makes a certificate and key with `gotalk gen-cert` in `dir`.
fn gen_cert(dir: &TempDir) -> (PathBuf, PathBuf) {
    let run = run_cli(
        &["gen-cert", "--host", "localhost", "--data", dir.arg()],
        Duration::from_secs(30),
    );
    assert!(run.status.is_some_and(|s| s.success()), "{run:?}");
    (
        dir.path().join("tls-cert.pem"),
        dir.path().join("tls-key.pem"),
    )
}

fn der(cert: &Path) -> CertificateDer<'static> {
    CertificateDer::pem_file_iter(cert)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
}

/// Waits until `needle` appears `n` times in the server's log.
fn wait_for_count(server: &TestServer, needle: &str, n: usize) {
    let deadline = Instant::now() + RELOAD_WAIT;
    while server.stderr_text().matches(needle).count() < n {
        assert!(
            Instant::now() < deadline,
            "no {n}× {needle:?} in the log:\n{}",
            server.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A line-protocol connection over TLS trusting every certificate of
/// `trusted`; returns it after a PING answered, with the certificate the
/// server presented.
fn connect(addr: SocketAddr, trusted: &[&Path]) -> (BufReader<Tls>, CertificateDer<'static>) {
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add(der(cert)).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let session = ClientConnection::new(Arc::new(config), name).unwrap();
    let mut line = BufReader::new(StreamOwned::new(session, socket));
    ping(&mut line);
    let presented = line.get_ref().conn.peer_certificates().unwrap()[0].clone();
    (line, presented)
}

/// A PING whose reply must be the next line.
fn ping(line: &mut BufReader<Tls>) {
    line.get_mut().write_all(b"PING\n").unwrap();
    line.get_mut().flush().unwrap();
    let mut reply = String::new();
    line.read_line(&mut reply).unwrap();
    assert!(reply.contains("\"pong\":true"), "{reply:?}");
}

#[test]
fn sighup_serves_a_new_certificate_to_new_connections_and_keeps_open_ones() {
    let (old_dir, new_dir, live) = (
        TempDir::new("reload-a"),
        TempDir::new("reload-b"),
        TempDir::new("reload-live"),
    );
    let (old_cert, old_key) = gen_cert(&old_dir);
    let (new_cert, new_key) = gen_cert(&new_dir);
    let (cert, key) = (live.path().join("cert.pem"), live.path().join("key.pem"));
    std::fs::copy(&old_cert, &cert).unwrap();
    std::fs::copy(&old_key, &key).unwrap();
    let server = TestServer::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let trusted = [old_cert.as_path(), new_cert.as_path()];
    let (mut before, presented) = connect(server.addr(), &trusted);
    assert_eq!(presented, der(&old_cert));

    // Renewed: both files replaced, then SIGHUP.
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    server.signal(libc::SIGHUP);
    wait_for_count(&server, "SIGHUP: TLS certificate", 1);
    let (mut after, presented) = connect(server.addr(), &trusted);
    assert_eq!(
        presented,
        der(&new_cert),
        "a new connection gets the new certificate"
    );
    ping(&mut before);
    ping(&mut after);

    // A broken certificate file is refused; the new one stays in use.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n").unwrap();
    server.signal(libc::SIGHUP);
    wait_for_count(&server, "the certificate in use stays", 1);
    assert!(server
        .stderr_text()
        .contains(&format!("--tls-cert {}", cert.display())));
    let (mut third, presented) = connect(server.addr(), &trusted);
    assert_eq!(presented, der(&new_cert));
    // A key that does not match the certificate is refused too.
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&old_key, &key).unwrap();
    server.signal(libc::SIGHUP);
    wait_for_count(&server, "the certificate in use stays", 2);
    let (_, presented) = connect(server.addr(), &trusted);
    assert_eq!(presented, der(&new_cert));
    ping(&mut third);
    ping(&mut before);
}

/// The key id in front of a v3 token (its first 8 hex digits).
fn key_id(token: &str) -> u32 {
    u32::from_str_radix(&token[..8], 16).unwrap()
}

#[test]
fn sighup_takes_up_a_rotated_token_key_without_a_restart() {
    let data = TempDir::new("reload-token-key");
    let server = TestServer::start(&["--data", data.arg()]);
    let (_, before, _) = register_and_login(&server, "alice", "alice-password");
    assert_eq!(key_id(&before), 0);

    let run = run_cli(
        &["rotate-key", "--data", data.arg()],
        Duration::from_secs(10),
    );
    assert!(run.status.is_some_and(|s| s.success()), "{run:?}");
    assert!(
        run.stdout.contains("SIGHUP"),
        "rotate-key says how to take it up: {run:?}"
    );
    server.signal(libc::SIGHUP);
    wait_for_count(&server, "SIGHUP: token key file", 1);
    assert!(server.stderr_text().contains("key 1 seals new tokens"));
    let mut client = server.connect();
    let (after, _) = login(&mut client, "alice", "alice-password");
    assert_eq!(key_id(&after), 1, "new tokens are sealed with the new key");
    assert_ok(&server.connect().text(&format!("AUTH {before}")));
    assert_ok(&server.connect().text(&format!("AUTH {after}")));

    // A broken key file is refused; the keys in use stay.
    let key_file = data.path().join("secret.key");
    let good = std::fs::read_to_string(&key_file).unwrap();
    std::fs::write(&key_file, "1 not-hex\n").unwrap();
    server.signal(libc::SIGHUP);
    wait_for_count(&server, "the keys in use stay", 1);
    let (again, _) = login(&mut server.connect(), "alice", "alice-password");
    assert_eq!(key_id(&again), 1);
    assert_ok(&server.connect().text(&format!("AUTH {before}")));

    // Deleting key 0's line and reloading ends the tokens it sealed.
    let without_0: String = good
        .lines()
        .filter(|l| !l.starts_with("0 "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&key_file, without_0).unwrap();
    server.signal(libc::SIGHUP);
    wait_for_count(&server, "SIGHUP: token key file", 2);
    assert_error(
        &server.connect().text(&format!("AUTH {before}")),
        "unauthorized",
    );
    assert_ok(&server.connect().text(&format!("AUTH {after}")));
}
