//! Output over TLS against the real binary: a reader that stops reading is
//! closed as a slow consumer at `--max-output` (output counts until its
//! ciphertext is on the socket, so TLS hides none of it), a reply much
//! larger than a TLS record arrives whole, and QUIT ends with the
//! server's `close_notify`, so the client sees a clean end of stream.

mod common;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "correct-horse-9";

/// A server with a gen-cert certificate and `extra` flags, and a client
/// configuration that trusts that certificate.
fn start(extra: &[&str]) -> (TestServer, Arc<ClientConfig>, TempDir) {
    let dir = TempDir::new("tls-output");
    let run = run_cli(
        &["gen-cert", "--host", "localhost", "--data", dir.arg()],
        Duration::from_secs(30),
    );
    assert!(run.status.is_some_and(|s| s.success()), "{run:?}");
    let cert = dir.path().join("tls-cert.pem");
    let key = dir.path().join("tls-key.pem");
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let mut args = vec!["--tls-cert", &cert_arg, "--tls-key", &key_arg];
    args.extend_from_slice(extra);
    let server = TestServer::start(&args);
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (server, Arc::new(config), dir)
}

struct TlsLine {
    reader: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsLine {
    fn connect(server: &TestServer, config: &Arc<ClientConfig>) -> TlsLine {
        let socket = TcpStream::connect(server.addr()).unwrap();
        socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let session = ClientConnection::new(config.clone(), name).unwrap();
        TlsLine {
            reader: BufReader::new(StreamOwned::new(session, socket)),
        }
    }

    fn send(&mut self, line: &str) {
        let stream = self.reader.get_mut();
        stream.write_all(format!("{line}\n").as_bytes()).unwrap();
        stream.flush().unwrap();
    }

    fn reply(&mut self, line: &str) -> Value {
        self.send(line);
        let mut got = String::new();
        assert!(self.reader.read_line(&mut got).unwrap() > 0, "closed");
        serde_json::from_str(&got).unwrap_or_else(|e| panic!("{e}: {got:?}"))
    }

    fn login(&mut self, name: &str) {
        assert_eq!(
            self.reply(&format!("REGISTER {name} {PASSWORD}"))["ok"],
            true
        );
        assert_eq!(self.reply(&format!("LOGIN {name} {PASSWORD}"))["ok"], true);
    }
}

#[test]
fn a_tls_reader_that_does_not_read_is_closed_as_a_slow_consumer() {
    // As tests/ws_limits.rs: 24 MiB of pushes, far more than the kernel
    // buffers and the 64 KiB allowed queue hold.
    let (server, config, _dir) = start(&[
        "--metrics",
        "127.0.0.1:0",
        "--max-output",
        "65536",
        "--mailbox-bytes",
        "67108864",
        "--pending-bytes-per-sender",
        "67108864",
    ]);
    let mut alice = TlsLine::connect(&server, &config);
    alice.login("alice");
    let mut bob = TlsLine::connect(&server, &config);
    bob.login("bob");
    let content = "m".repeat(60 * 1024);
    for _ in 0..400 {
        let reply = alice.reply(&format!("SEND bob {content}"));
        assert_eq!(reply["ok"], true, "{reply}");
    }
    let stats = server.stats_when(|s| s["server"]["closed_by_reason"]["slow_consumer"] == 1);
    assert_eq!(
        stats["server"]["closed_by_reason"]["slow_consumer"], 1,
        "{stats}"
    );
    assert_eq!(
        alice.reply("PING")["pong"],
        true,
        "the sender is unaffected"
    );
}

#[test]
fn a_push_past_a_record_arrives_whole_and_quit_ends_with_close_notify() {
    let (server, config, _dir) = start(&[]);
    let mut alice = TlsLine::connect(&server, &config);
    alice.login("alice");
    let mut bob = TlsLine::connect(&server, &config);
    bob.login("bob");
    // Three records' worth in one push.
    let content: String = (0..50_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    assert_eq!(alice.reply(&format!("SEND bob {content}"))["ok"], true);
    let mut line = String::new();
    bob.reader.read_line(&mut line).unwrap();
    let push: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(push["event"], "message", "{push}");
    assert_eq!(push["message"]["content"], content.as_str());

    assert_eq!(bob.reply("QUIT")["ok"], true);
    let mut rest = String::new();
    // rustls reports a close without close_notify as UnexpectedEof.
    let n = bob
        .reader
        .read_line(&mut rest)
        .expect("a clean close (close_notify) after QUIT");
    assert_eq!(n, 0, "nothing after the QUIT reply: {rest:?}");
}
