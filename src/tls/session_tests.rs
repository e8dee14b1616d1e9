//! Unit tests for [`TlsSession`]: a rustls client talks to it over an
//! in-memory socket that can hand over one byte at a time and take a
//! little at a time, so records split anywhere, partial writes and alerts
//! are checked without a network, along with what an idle session holds.

use super::TlsSession;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// The server's side of a socket: bytes the client sent, bytes the server
/// wrote, and how much one read or write may move.
struct Pipe {
    to_server: Vec<u8>,
    from_server: Vec<u8>,
    read_limit: usize,
    write_limit: usize,
    /// Write calls left before the socket reports full (resets on drain).
    writes_left: usize,
    /// Plaintext the client has received so far.
    client_got: Vec<u8>,
}

impl Pipe {
    fn new() -> Pipe {
        Pipe {
            to_server: Vec::new(),
            from_server: Vec::new(),
            read_limit: usize::MAX,
            write_limit: usize::MAX,
            writes_left: usize::MAX,
            client_got: Vec::new(),
        }
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.to_server.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.to_server.len().min(buf.len()).min(self.read_limit);
        buf[..n].copy_from_slice(&self.to_server[..n]);
        self.to_server.drain(..n);
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.writes_left == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.writes_left -= 1;
        let n = buf.len().min(self.write_limit);
        self.from_server.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    let cert = CertificateDer::from(generated.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("a server config");
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("a root");
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// Moves the client's ciphertext to the pipe.
fn client_sends(client: &mut ClientConnection, pipe: &mut Pipe) {
    while client.wants_write() {
        client.write_tls(&mut pipe.to_server).expect("client write");
    }
}

/// Gives the client what the server wrote.
fn client_receives(client: &mut ClientConnection, pipe: &mut Pipe) {
    let mut bytes = &pipe.from_server[..];
    while !bytes.is_empty() {
        client.read_tls(&mut bytes).expect("client read");
        client.process_new_packets().expect("the server speaks TLS");
        drain_client(client, &mut pipe.client_got);
    }
    pipe.from_server.clear();
    pipe.writes_left = usize::MAX;
}

/// Reads all the plaintext the server can get now.
fn server_reads(tls: &mut TlsSession, pipe: &mut Pipe) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut ciphertext = 0;
        match tls.read(pipe, &mut buf, &mut ciphertext) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

/// A finished handshake.
fn connected() -> (TlsSession, ClientConnection, Pipe) {
    let (server, client_config) = configs();
    let name = ServerName::try_from("localhost").expect("a name");
    let mut client = ClientConnection::new(client_config, name).expect("a client");
    let mut pipe = Pipe::new();
    client_sends(&mut client, &mut pipe);
    let first = std::mem::take(&mut pipe.to_server);
    let mut tls = TlsSession::start(&server, &first).expect("a session");
    for _ in 0..10 {
        assert!(tls.write_pending(&mut pipe).expect("written"));
        client_receives(&mut client, &mut pipe);
        client_sends(&mut client, &mut pipe);
        server_reads(&mut tls, &mut pipe).expect("a handshake");
        if !tls.is_handshaking() && !client.is_handshaking() {
            assert!(tls.write_pending(&mut pipe).expect("written"));
            client_receives(&mut client, &mut pipe);
            return (tls, client, pipe);
        }
    }
    panic!("the handshake did not finish");
}

/// Writes all of `data` through the session, letting the client drain the
/// socket whenever it is full.
fn server_writes_all(
    tls: &mut TlsSession,
    client: &mut ClientConnection,
    pipe: &mut Pipe,
    data: &[u8],
) {
    let mut sent = 0;
    while sent < data.len() {
        match tls.write(pipe, &data[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => client_receives(client, pipe),
            Err(e) => panic!("write failed: {e}"),
        }
    }
    while !tls.write_pending(pipe).expect("written") {
        client_receives(client, pipe);
    }
    client_receives(client, pipe);
}

/// Moves the plaintext the client has decrypted into `got`.
fn drain_client(client: &mut ClientConnection, got: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        match client.reader().read(&mut buf) {
            Ok(0) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => panic!("client read: {e}"),
        }
    }
}

fn holds_no_buffer(tls: &TlsSession) -> bool {
    tls.incoming.capacity() == 0 && tls.plaintext.capacity() == 0 && tls.outgoing.capacity() == 0
}

#[test]
fn a_ping_and_its_pong_then_the_idle_session_holds_no_buffer() {
    let (mut tls, mut client, mut pipe) = connected();
    client.writer().write_all(b"PING\n").expect("queued");
    client_sends(&mut client, &mut pipe);
    assert_eq!(server_reads(&mut tls, &mut pipe).expect("read"), b"PING\n");
    server_writes_all(
        &mut tls,
        &mut client,
        &mut pipe,
        b"{\"ok\":true,\"pong\":true}\n",
    );
    assert_eq!(pipe.client_got, b"{\"ok\":true,\"pong\":true}\n");
    assert!(!tls.wants_write());
    assert!(holds_no_buffer(&tls), "an idle session keeps no buffer");
}

#[test]
fn records_arriving_one_byte_at_a_time_give_every_byte_once() {
    let (mut tls, mut client, mut pipe) = connected();
    let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    client.writer().write_all(&data).expect("queued");
    client_sends(&mut client, &mut pipe);
    pipe.read_limit = 1;
    let got = server_reads(&mut tls, &mut pipe).expect("read");
    assert_eq!(got.len(), data.len());
    assert_eq!(got, data);
    assert!(holds_no_buffer(&tls));
}

#[test]
fn output_past_a_record_through_a_socket_taking_little_arrives_whole() {
    let (mut tls, mut client, mut pipe) = connected();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    pipe.write_limit = 700;
    pipe.writes_left = 3;
    server_writes_all(&mut tls, &mut client, &mut pipe, &data);
    assert_eq!(pipe.client_got, data);
    assert!(holds_no_buffer(&tls));
}

#[test]
fn close_notify_goes_both_ways() {
    let (mut tls, mut client, mut pipe) = connected();
    tls.close_notify(&mut pipe);
    client_receives(&mut client, &mut pipe);
    let mut buf = [0u8; 16];
    assert_eq!(client.reader().read(&mut buf).expect("a clean close"), 0);
    assert!(client
        .process_new_packets()
        .expect("no error")
        .peer_has_closed());

    let (mut tls, mut client, mut pipe) = connected();
    client.writer().write_all(b"QUIT\n").expect("queued");
    client.send_close_notify();
    client_sends(&mut client, &mut pipe);
    assert_eq!(server_reads(&mut tls, &mut pipe).expect("read"), b"QUIT\n");
    let mut ciphertext = 0;
    assert_eq!(
        tls.read(&mut pipe, &mut buf, &mut ciphertext)
            .expect("closed"),
        0
    );
}

#[test]
fn a_forged_record_is_invalid_data_and_queues_an_alert() {
    let (mut tls, _client, mut pipe) = connected();
    pipe.to_server
        .extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x20]);
    pipe.to_server.extend_from_slice(&[0x5a; 0x20]);
    let err = server_reads(&mut tls, &mut pipe).expect_err("a bad record");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(tls.wants_write(), "the alert waits to be written");
    assert!(tls.write_pending(&mut pipe).expect("written"));
    assert_eq!(pipe.from_server[0], 0x17, "an encrypted alert record");
}
