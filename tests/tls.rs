//! TLS on the client port (`--tls-cert`, `--tls-key`), against the real
//! binary over sockets: `gotalk gen-cert` makes the pair; both doors work
//! over TLS (the line protocol with a push between two users, HTTP with
//! HSTS); plain connections are refused with a reason unless
//! `--allow-plaintext`; garbage after the handshake byte, a truncated
//! ClientHello and a stalled handshake each cost only their own
//! connection; `curl --cacert` trusts a gen-cert certificate; a public
//! address without TLS refuses to start and says how to get a certificate.

mod common;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A password long enough for the server's minimum.
const PASSWORD: &str = "correct-horse-9";

/// A certificate and key made by `gotalk gen-cert` in a temporary directory.
struct Pair {
    dir: TempDir,
}

impl Pair {
    fn generate() -> Pair {
        let dir = TempDir::new("tls");
        let run = run_cli(
            &[
                "gen-cert",
                "--host",
                "localhost",
                "127.0.0.1",
                "--data",
                dir.arg(),
            ],
            Duration::from_secs(30),
        );
        assert!(
            run.status.is_some_and(|s| s.success()),
            "gen-cert failed: {run:?}"
        );
        let pair = Pair { dir };
        assert!(
            run.stdout.contains(&format!(
                "--tls-cert {} --tls-key {}",
                pair.cert().display(),
                pair.key().display()
            )),
            "gen-cert does not print the flags to use: {}",
            run.stdout
        );
        pair
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("tls-cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("tls-key.pem")
    }

    /// The server flags that turn TLS on with this pair.
    fn flags(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert().display().to_string(),
            "--tls-key".into(),
            self.key().display().to_string(),
        ]
    }

    fn start(&self, extra: &[&str]) -> TestServer {
        let mut args = self.flags();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        TestServer::start(&args)
    }

    /// A client configuration that trusts this certificate only.
    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.cert()).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection, verified against the gen-cert certificate for
/// `localhost`; the handshake runs with the first read or write.
fn tls_connect(addr: SocketAddr, pair: &Pair) -> Tls {
    let socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    socket.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let session = ClientConnection::new(pair.client_config(), name).unwrap();
    StreamOwned::new(session, socket)
}

/// A line-protocol client over TLS.
struct TlsLine {
    reader: BufReader<Tls>,
}

impl TlsLine {
    fn connect(addr: SocketAddr, pair: &Pair) -> TlsLine {
        TlsLine {
            reader: BufReader::new(tls_connect(addr, pair)),
        }
    }

    fn send(&mut self, line: &str) {
        let stream = self.reader.get_mut();
        stream.write_all(format!("{line}\n").as_bytes()).unwrap();
        stream.flush().unwrap();
    }

    fn read_json(&mut self) -> Value {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the server closed the TLS connection");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Sends a command and returns the next line, which must be its reply.
    fn text(&mut self, line: &str) -> Value {
        self.send(line);
        let reply = self.read_json();
        assert!(reply.get("ok").is_some(), "not a reply: {reply}");
        reply
    }

    fn ping(&mut self) {
        let reply = self.text("PING");
        assert_eq!(reply["pong"], true, "{reply}");
    }
}

/// One HTTP/1.1 request over TLS with `Connection: close`; the response
/// as text (head and body).
fn https(addr: SocketAddr, pair: &Pair, request: &str) -> String {
    let mut stream = tls_connect(addr, pair);
    stream.write_all(request.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8(response).unwrap()
}

#[test]
fn gen_cert_writes_a_private_key_and_keeps_existing_files() {
    let pair = Pair::generate();
    let mode = std::fs::metadata(pair.key()).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
    let before = std::fs::read(pair.key()).unwrap();
    let again = run_cli(
        &["gen-cert", "--data", pair.dir.arg()],
        Duration::from_secs(30),
    );
    assert!(!again.status.unwrap().success(), "{again:?}");
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert_eq!(std::fs::read(pair.key()).unwrap(), before, "key replaced");
    let forced = run_cli(
        &["gen-cert", "--data", pair.dir.arg(), "--force"],
        Duration::from_secs(30),
    );
    assert!(forced.status.unwrap().success(), "{forced:?}");
    assert_ne!(std::fs::read(pair.key()).unwrap(), before, "key kept");
}

#[test]
fn the_line_protocol_works_over_tls() {
    let pair = Pair::generate();
    let server = pair.start(&[]);
    let mut alice = TlsLine::connect(server.addr(), &pair);
    let mut bob = TlsLine::connect(server.addr(), &pair);
    assert_ok(&alice.text(&format!("REGISTER alice {PASSWORD}")));
    assert_ok(&bob.text(&format!("REGISTER bob {PASSWORD}")));
    assert_ok(&alice.text(&format!("LOGIN alice {PASSWORD}")));
    assert_ok(&bob.text(&format!("LOGIN bob {PASSWORD}")));
    let sent = alice.text("SEND bob hello over tls");
    assert_ok(&sent);
    let push = bob.read_json();
    assert_eq!(push["event"], "message", "{push}");
    assert_eq!(push["message"]["content"], "hello over tls", "{push}");
    assert_eq!(push["message"]["from"], "alice", "{push}");
    bob.ping();
    alice.ping();
}

#[test]
fn http_works_over_tls_with_hsts() {
    let pair = Pair::generate();
    let server = pair.start(&[]);
    let page = https(
        server.addr(),
        &pair,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page:.300}");
    assert!(
        page.contains("\r\nStrict-Transport-Security: max-age=31536000\r\n"),
        "{page:.600}"
    );
    assert!(page.contains("<html"), "{page:.300}");
    let body = format!("username=carol&password={PASSWORD}");
    let registered = https(
        server.addr(),
        &pair,
        &format!(
            "POST /register HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(
        registered.starts_with("HTTP/1.1 200 OK\r\n"),
        "{registered}"
    );
    assert!(
        registered.contains("Strict-Transport-Security"),
        "{registered}"
    );
    assert!(registered.contains("\"carol\""), "{registered}");
}

#[test]
fn plain_connections_are_refused_when_tls_is_required() {
    let pair = Pair::generate();
    let server = pair.start(&[]);
    let mut line = server.connect();
    line.send_line("PING");
    let refused = line.read_json();
    assert_error(&refused, "bad_request");
    assert!(error_message(&refused).contains("TLS"), "{refused}");
    line.expect_eof();

    let mut http = TcpStream::connect(server.addr()).unwrap();
    http.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(response.contains("Content-Type: text/plain"), "{response}");
    assert!(response.contains("requires TLS"), "{response}");

    // The refused clients cost nothing: TLS clients are served.
    TlsLine::connect(server.addr(), &pair).ping();
}

#[test]
fn allow_plaintext_takes_both() {
    let pair = Pair::generate();
    let server = pair.start(&["--allow-plaintext"]);
    server.connect().expect_nothing_before_pong();
    TlsLine::connect(server.addr(), &pair).ping();
    let page = https(
        server.addr(),
        &pair,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
}

/// Reads until the server ends the connection (a close, possibly after a
/// TLS alert, or a reset); fails if it stays open past the read timeout.
#[track_caller]
fn expect_closed(socket: &mut TcpStream, what: &str) {
    let mut sink = Vec::new();
    match socket.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{what}: the server did not close the connection: {e}"),
    }
    // Whatever came first is a TLS record (an alert), never a reply line.
    assert!(
        sink.first().is_none_or(|&b| b == 0x15),
        "{what}: received {sink:?}"
    );
}

/// The first bytes of a real ClientHello, made by rustls.
fn client_hello(pair: &Pair) -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut session = ClientConnection::new(pair.client_config(), name).unwrap();
    let mut hello = Vec::new();
    session.write_tls(&mut hello).unwrap();
    assert_eq!(hello[0], 0x16);
    hello
}

#[test]
fn bad_truncated_and_stalled_handshakes_cost_only_their_own_connection() {
    let pair = Pair::generate();
    let server = pair.start(&["--tls-handshake-timeout", "3"]);
    let connect = || {
        let socket = TcpStream::connect(server.addr()).unwrap();
        socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        socket
    };
    let hello = client_hello(&pair);

    // Stalled: half a ClientHello, then nothing.
    let mut stalled = connect();
    stalled.write_all(&hello[..hello.len() / 2]).unwrap();
    // Garbage after the handshake byte.
    let mut garbage = connect();
    let mut junk = vec![0x16];
    junk.extend_from_slice(&[0xee; 300]);
    junk.extend_from_slice(b"\nPING\n");
    garbage.write_all(&junk).unwrap();
    // Truncated: part of a ClientHello, then the client closes its side.
    let mut truncated = connect();
    truncated.write_all(&hello[..40]).unwrap();
    truncated.shutdown(std::net::Shutdown::Write).unwrap();

    // While all three are open or closing, another TLS client is served
    // in full: its handshake, a password check and a PING.
    let mut good = TlsLine::connect(server.addr(), &pair);
    assert_ok(&good.text(&format!("REGISTER dave {PASSWORD}")));
    good.ping();

    expect_closed(&mut garbage, "garbage after 0x16");
    expect_closed(&mut truncated, "a truncated ClientHello");
    // The stalled handshake is closed at its deadline.
    expect_closed(&mut stalled, "a stalled handshake");
    good.ping();
    TlsLine::connect(server.addr(), &pair).ping();
}

#[test]
fn curl_trusts_a_gen_cert_certificate() {
    let pair = Pair::generate();
    let server = pair.start(&[]);
    let url = format!("https://localhost:{}/healthz", server.addr().port());
    let output = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20", "--cacert"])
        .arg(pair.cert())
        .arg(&url)
        .output()
        .expect("curl is installed (scripts/install-test-deps.sh)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("strict-transport-security") || text.contains("Strict-Transport-Security"),
        "{text}"
    );
    assert!(text.contains("{\"ok\":true}"), "{text}");
    // Without the certificate, curl refuses the server.
    let untrusted = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .arg(&url)
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
}

#[test]
fn openssl_s_client_speaks_the_line_protocol() {
    let pair = Pair::generate();
    let server = pair.start(&[]);
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
        .arg(server.addr().to_string())
        .arg("-CAfile")
        .arg(pair.cert())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl is installed (scripts/install-test-deps.sh)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"PING\nQUIT\n").unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    drop(stdin);
    let _ = child.wait();
    assert!(out.contains("\"pong\":true"), "{out}");
    assert!(out.contains("{\"ok\":true}\n"), "QUIT's reply: {out}");
}

#[test]
fn a_public_address_without_tls_refuses_to_start_with_a_hint() {
    let run = run_cli(
        &["--listen", "0.0.0.0:0", "--memory"],
        Duration::from_secs(20),
    );
    assert!(run.status.is_some_and(|s| !s.success()), "started: {run:?}");
    assert!(run.stderr.contains("gotalk gen-cert"), "{}", run.stderr);
    assert!(run.stderr.contains("--tls-cert"), "{}", run.stderr);
    assert!(run.stderr.contains("--allow-plaintext"), "{}", run.stderr);
}

#[test]
fn a_key_others_may_read_refuses_to_start_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let pair = Pair::generate();
    std::fs::set_permissions(pair.key(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut args = pair.flags();
    args.extend(["--listen", "127.0.0.1:0", "--memory"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_cli(&args, Duration::from_secs(20));
    assert!(run.status.is_some_and(|s| !s.success()), "started: {run:?}");
    assert!(run.stderr.contains("mode 666"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("chmod 600 {}", pair.key().display())),
        "{}",
        run.stderr
    );
    // Made private again, the same pair starts.
    std::fs::set_permissions(pair.key(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = pair.start(&[]);
    let mut line = TlsLine::connect(server.addr(), &pair);
    line.ping();
}

#[test]
fn over_tls_only_an_https_page_may_post() {
    let pair = Pair::generate();
    let server = pair.start(&[]);
    let port = server.addr().port();
    let lookup = |origin: &str| {
        let body = "username=nobody";
        https(
            server.addr(),
            &pair,
            &format!(
                "POST /getuseridbyname HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: {origin}\r\n\
                 Connection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    // An http:// page of the same host and port, posting to https://.
    let refused = lookup(&format!("http://localhost:{port}"));
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains("may not post"), "{refused}");
    let own = lookup(&format!("https://localhost:{port}"));
    assert!(!own.starts_with("HTTP/1.1 403"), "{own}");
}

#[test]
fn tls_handshakes_past_the_per_address_rate_are_closed_at_once() {
    let pair = Pair::generate();
    let server = pair.start(&[
        "--tls-handshakes-per-address-second",
        "1",
        "--tls-handshake-burst",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let hello = client_hello(&pair);
    let started = std::time::Instant::now();
    let mut answered = 0;
    for _ in 0..10 {
        let mut socket = TcpStream::connect(server.addr()).unwrap();
        socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        socket.write_all(&hello).unwrap();
        let mut first = [0u8; 1];
        match socket.read(&mut first) {
            Ok(1) if first[0] == 0x16 => answered += 1, // a ServerHello
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("neither a ServerHello nor a close: {other:?} {first:?}"),
        }
    }
    // Two at once, then one a second.
    let most = 2 + started.elapsed().as_secs() as usize + 1;
    assert!((2..=most).contains(&answered), "{answered} of 10 answered");
    assert!(server.wait_for_stderr(
        "refusing TLS handshakes from 127.0.0.1",
        Duration::from_secs(10)
    ));
    let stats = server.stats();
    assert!(
        stats["server"]["closed_by_reason"]["tls_handshake_rate"]
            .as_u64()
            .is_some_and(|n| n >= 10 - answered as u64),
        "{}",
        stats["server"]
    );
    // Another address has its own rate.
    let socket = connect_from(std::net::Ipv4Addr::new(127, 0, 0, 2), server.addr());
    socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let session = ClientConnection::new(pair.client_config(), name).unwrap();
    let mut other = TlsLine {
        reader: BufReader::new(StreamOwned::new(session, socket)),
    };
    other.ping();
}
