//! `idle --tls`: what an idle TLS connection costs the server in memory,
//! side by side with a plain connection of the same shape. Each
//! connection finishes its handshake (TLS with a certificate from the
//! server's own `gen-cert`, or none), sends one PING, reads its PONG and
//! then sits idle, not logged in; the server's RSS is read before and
//! after, as in [`crate::idle`]. Each side runs on a fresh server started
//! with the same flags.
//!
//! [`tls_idle`] and [`plain_idle`] are public so `compare` can run the
//! same shapes.

use crate::idle::{self, Handshake, IdleOutcome};
use crate::server::{self, Gotalk, Mode};
use crate::{thousands, wire, Opts};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Connections when `--conns` is not given.
const DEFAULT_CONNS: usize = 2_000;
/// Longest wait for a handshake or a PONG.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// `gotalk-bench idle --tls`: plain, then TLS, each on a fresh server.
pub fn run(opts: &Opts) -> Result<(), String> {
    let n = opts.conns.unwrap_or(DEFAULT_CONNS);
    idle::check_files(n)?;
    let dir = server::temp_dir("idle-tls")?;
    let result = plain_and_tls(opts, &dir, n);
    let _ = std::fs::remove_dir_all(&dir);
    let (plain, tls) = result?;
    println!(
        "idle: {} connections to gotalk --memory with a gen-cert certificate, each after its \
         handshake and one PING, not logged in: plain, then TLS",
        thousands(n as f64)
    );
    let per_plain = plain.bytes_per_conn();
    let per_tls = tls.bytes_per_conn();
    idle::print_idle(&[("gotalk plain".into(), plain), ("gotalk TLS".into(), tls)]);
    println!(
        "TLS minus plain: {:.0} bytes per idle connection ({:.1}x plain)",
        per_tls - per_plain,
        per_tls / per_plain.max(1.0)
    );
    Ok(())
}

/// `n` idle connections plain, then `n` over TLS, each on a fresh server
/// with a certificate made in `dir`.
pub fn plain_and_tls(
    opts: &Opts,
    dir: &Path,
    n: usize,
) -> Result<(IdleOutcome, IdleOutcome), String> {
    let (cert, key) = crate::tls::gen_cert(&opts.server, dir)?;
    let plain = {
        let server = start_tls_server(opts, &cert, &key)?;
        plain_idle(&server, n).map_err(|e| format!("plain: {e}\n{}", server.log_tail()))?
    };
    let tls = {
        let server = start_tls_server(opts, &cert, &key)?;
        tls_idle(&server, &cert, n).map_err(|e| format!("TLS: {e}\n{}", server.log_tail()))?
    };
    Ok((plain, tls))
}

/// A `--memory` server with TLS on `cert`/`key` that also takes plain
/// connections, with no cap on connections or TLS handshakes per address
/// (every bench connection comes from 127.0.0.1).
pub fn start_tls_server(opts: &Opts, cert: &Path, key: &Path) -> Result<Gotalk, String> {
    let launch = server::Launch {
        args: vec![
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
            "--allow-plaintext".into(),
            "--max-connections-per-address".into(),
            "1000000".into(),
            "--tls-handshakes-per-address-second".into(),
            "0".into(),
        ],
        open_files: None,
        fair_shares: false,
    };
    Gotalk::start_with(&opts.server, Mode::Memory, &launch)
}

/// `n` plain connections to `server`, each after one PING.
pub fn plain_idle(server: &Gotalk, n: usize) -> Result<IdleOutcome, String> {
    idle::measure(server.pid(), n, || idle::open_idle(server.addr, n, &Ping))
}

/// `n` TLS connections to `server` (whose certificate is `cert`), each
/// after its handshake and one PING.
pub fn tls_idle(server: &Gotalk, cert: &Path, n: usize) -> Result<IdleOutcome, String> {
    let config = crate::tls::client_config(cert)?;
    idle::measure(server.pid(), n, || {
        (0..n)
            .map(|i| tls_ping(server.addr, &config).map_err(|e| format!("connection {i}: {e}")))
            .collect()
    })
}

/// Connects, finishes the TLS handshake, sends PING and reads its PONG;
/// returns the socket (the client's TLS state is dropped without a
/// close_notify: the server sees an idle connection).
fn tls_ping(addr: SocketAddr, config: &Arc<ClientConfig>) -> Result<TcpStream, String> {
    let mut sock = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT)
        .map_err(|e| format!("cannot connect: {e}"))?;
    sock.set_read_timeout(Some(REPLY_TIMEOUT))
        .and_then(|_| sock.set_write_timeout(Some(REPLY_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("a valid name");
    let mut session = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let mut got = Vec::with_capacity(64);
    {
        let mut stream = rustls::Stream::new(&mut session, &mut sock);
        stream
            .write_all(b"PING\n")
            .map_err(|e| format!("TLS PING: {e}"))?;
        let mut buf = [0u8; 256];
        while wire::find_newline(&got).is_none() {
            match stream.read(&mut buf) {
                Ok(0) => return Err("the server closed the TLS connection".into()),
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e) => return Err(format!("TLS PING: {e}")),
            }
        }
    }
    Ping.complete(&got).expect("a whole line")?;
    Ok(sock)
}

/// A plain connection's shape: one PING, whose PONG says it is ready.
struct Ping;

impl Handshake for Ping {
    fn request(&self, _i: usize) -> Vec<u8> {
        b"PING\n".to_vec()
    }

    fn complete(&self, got: &[u8]) -> Option<Result<(), String>> {
        let end = wire::find_newline(got)?;
        let line = &got[..end];
        Some(if line.starts_with(b"{\"ok\":true,\"pong\":true}") {
            Ok(())
        } else {
            Err(format!("no PONG: {}", String::from_utf8_lossy(line)))
        })
    }
}
