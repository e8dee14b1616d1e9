//! TLS for `relay --tls`: a certificate from the server's own `gen-cert`,
//! client connections that AUTH over TLS with a token from a plain LOGIN,
//! and [`TlsStream`], a non-blocking rustls client stream the relay engine
//! drives like a plain socket (it is a `mio` source; `flush` writes the
//! ciphertext rustls still holds).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Plaintext handed to rustls per write.
const CHUNK: usize = 64 * 1024;

/// Runs `server gen-cert` into `dir`; returns (certificate, key).
pub fn gen_cert(server: &Path, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let out = Command::new(server)
        .args(["gen-cert", "--host", "localhost", "127.0.0.1", "--data"])
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run {} gen-cert: {e}", server.display()))?;
    if !out.status.success() {
        return Err(format!(
            "gen-cert failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((dir.join("tls-cert.pem"), dir.join("tls-key.pem")))
}

/// A client configuration that trusts `cert` only.
pub fn client_config(cert: &Path) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).map_err(|e| e.to_string())? {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Connects over TLS, sends `AUTH token` and waits for its reply
/// (blocking), then hands the connection over non-blocking.
pub fn connect_and_auth(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    token: &str,
) -> Result<TlsStream, String> {
    let mut sock = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let _ = sock.set_nodelay(true);
    let name = ServerName::try_from("localhost").expect("a valid name");
    let mut session = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    {
        let mut stream = rustls::Stream::new(&mut session, &mut sock);
        stream
            .write_all(format!("AUTH {token}\n").as_bytes())
            .map_err(|e| format!("TLS AUTH: {e}"))?;
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            match stream.read(&mut byte) {
                Ok(1) => line.push(byte[0]),
                Ok(_) => return Err("the server closed the TLS connection".into()),
                Err(e) => return Err(format!("TLS AUTH: {e}")),
            }
        }
    }
    if !line.starts_with(b"{\"ok\":true") {
        return Err(format!("AUTH: {}", String::from_utf8_lossy(&line)));
    }
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(TlsStream {
        sock: mio::net::TcpStream::from_std(sock),
        session,
    })
}

/// A non-blocking TLS client connection.
pub struct TlsStream {
    sock: mio::net::TcpStream,
    session: ClientConnection,
}

impl TlsStream {
    /// Writes the ciphertext rustls holds until done or the socket is full.
    fn write_pending(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.session.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.session.read_tls(&mut self.sock)? == 0 {
                return Ok(0);
            }
            self.session
                .process_new_packets()
                .map_err(io::Error::other)?;
            self.write_pending()?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_pending()?;
        if self.session.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.session.writer().write(&buf[..buf.len().min(CHUNK)])?;
        self.write_pending()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()
    }
}

impl mio::event::Source for TlsStream {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        self.sock.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        self.sock.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.sock.deregister(registry)
    }
}
