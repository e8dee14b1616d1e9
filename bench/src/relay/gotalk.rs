//! goTalk's side of the relay: its line protocol as a [`Proto`] (JSON
//! SENDs, push events, JSON ACKs), logging the bench's users in, and the
//! relay load against a goTalk server plain or over TLS. Kept apart from
//! the engine in `relay.rs`, which drives every server the same way.

use super::*;

/// goTalk's line protocol: JSON SENDs, push events, JSON ACKs.
pub struct GotalkProto {
    receivers: Vec<String>,
    /// One ready SEND line per receiver.
    lines: Vec<Vec<u8>>,
}

impl GotalkProto {
    pub fn new(receivers: &[String]) -> GotalkProto {
        GotalkProto::with_content(receivers, CONTENT)
    }

    /// SENDs of `content` (plain ASCII, nothing JSON would escape).
    pub fn with_content(receivers: &[String], content: &str) -> GotalkProto {
        let mut lines = Vec::new();
        for r in receivers {
            let mut line = Vec::new();
            gotalk_send(r, content.as_bytes(), &mut line);
            lines.push(line);
        }
        GotalkProto {
            receivers: receivers.to_vec(),
            lines,
        }
    }
}

/// Appends a JSON SEND of `content` to `to`.
fn gotalk_send(to: &str, content: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"cmd\":\"send\",\"to\":\"");
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(b"\",\"content\":\"");
    out.extend_from_slice(content);
    out.extend_from_slice(b"\"}\n");
}

impl Proto for GotalkProto {
    fn push_send(&self, sender: usize, n: u64, out: &mut Vec<u8>) {
        let target = (sender + n as usize) % self.lines.len();
        out.extend_from_slice(&self.lines[target]);
    }

    fn push_payload(&self, to: usize, payload: &[u8], out: &mut Vec<u8>) {
        gotalk_send(&self.receivers[to], payload, out);
    }

    fn sender_line(&self, line: &[u8]) -> SenderLine {
        if wire::is_error_reply(line) {
            SenderLine::Error
        } else if line.starts_with(b"{\"ok\"") {
            SenderLine::Answered(1)
        } else {
            SenderLine::Other
        }
    }

    fn receiver_line(&self, line: &[u8]) -> ReceiverLine {
        match wire::push_id(line) {
            Some(id) => ReceiverLine::Message(Some(id)),
            None if wire::is_error_reply(line) => ReceiverLine::Error,
            None => ReceiverLine::Other,
        }
    }

    fn push_ack(&self, upto: u64, out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(b"{\"cmd\":\"ack\",\"upto\":");
        out.extend_from_slice(upto.to_string().as_bytes());
        out.extend_from_slice(b"}\n");
        true
    }
}

/// LOGINs in flight at once from [`login_all`]: the server's default
/// share of its password queue for one address (`--hash-queue-per-address`);
/// more would be refused `rate_limited`.
const LOGIN_WAVE: usize = 16;

/// Connects one client per name and logs each in, the LOGINs (argon2 on
/// the server) running concurrently, [`LOGIN_WAVE`] at a time. Returns the
/// clients and their tokens.
pub fn login_all(
    addr: std::net::SocketAddr,
    names: &[String],
) -> Result<(Vec<Client>, Vec<String>), String> {
    let mut clients = Vec::new();
    let mut tokens = Vec::new();
    for wave in names.chunks(LOGIN_WAVE) {
        let first = clients.len();
        for name in wave {
            let mut c = Client::connect(addr)?;
            c.send(&format!("LOGIN {name} {}", wire::PASSWORD))?;
            clients.push(c);
        }
        for (c, name) in clients[first..].iter_mut().zip(wave) {
            let reply = c.reply().map_err(|e| format!("LOGIN {name}: {e}"))?;
            let token = reply["token"]
                .as_str()
                .ok_or_else(|| format!("LOGIN {name}: no token in {reply}"))?;
            tokens.push(token.to_string());
        }
    }
    Ok((clients, tokens))
}

/// Sets up goTalk accounts and connections and drives the relay load.
pub fn relay_gotalk(
    server: &Gotalk,
    s_count: usize,
    r_count: usize,
    shape: &Shape,
) -> Result<Outcome, String> {
    relay_gotalk_content(server, s_count, r_count, shape, CONTENT)
}

/// [`relay_gotalk`] with messages of `content`.
pub fn relay_gotalk_content(
    server: &Gotalk,
    s_count: usize,
    r_count: usize,
    shape: &Shape,
    content: &str,
) -> Result<Outcome, String> {
    let senders: Vec<String> = (0..s_count).map(|i| format!("bench-s{i}")).collect();
    let receivers: Vec<String> = (0..r_count).map(|i| format!("bench-r{i}")).collect();
    let everyone: Vec<String> = senders.iter().chain(&receivers).cloned().collect();
    wire::register_all(server.addr, &everyone)?;
    let (mut clients, _) = login_all(server.addr, &everyone)?;
    let rx_clients = clients.split_off(s_count);
    let tx_streams = clients
        .into_iter()
        .map(Client::into_stream)
        .collect::<Result<_, _>>()?;
    let rx_streams = rx_clients
        .into_iter()
        .map(Client::into_stream)
        .collect::<Result<_, _>>()?;
    let proto = GotalkProto::with_content(&receivers, content);
    drive(
        &proto,
        plain_all(tx_streams)?,
        plain_all(rx_streams)?,
        shape,
        server.pid(),
    )
}

/// The relay's users registered (senders `bench-s0`…, receivers
/// `bench-r0`…), and their tokens in that order from LOGINs on
/// connections that close at once: left bound, each would get every push
/// too, and the server would do twice the work. Returns the receivers'
/// names and the tokens.
pub fn relay_users(
    server: &Gotalk,
    s_count: usize,
    r_count: usize,
) -> Result<(Vec<String>, Vec<String>), String> {
    let senders: Vec<String> = (0..s_count).map(|i| format!("bench-s{i}")).collect();
    let receivers: Vec<String> = (0..r_count).map(|i| format!("bench-r{i}")).collect();
    let everyone: Vec<String> = senders.iter().chain(&receivers).cloned().collect();
    wire::register_all(server.addr, &everyone)?;
    let (_, tokens) = login_all(server.addr, &everyone)?;
    Ok((receivers, tokens))
}

/// Like [`relay_gotalk`] over TLS: accounts and LOGINs over plain
/// connections (the server runs with `--allow-plaintext`), then each
/// relay connection opens TLS and AUTHs with its user's token.
pub fn relay_gotalk_tls(
    server: &Gotalk,
    cert: &std::path::Path,
    s_count: usize,
    r_count: usize,
    shape: &Shape,
) -> Result<Outcome, String> {
    let (receivers, tokens) = relay_users(server, s_count, r_count)?;
    let config = crate::tls::client_config(cert)?;
    let mut streams = tokens
        .iter()
        .map(|t| crate::tls::connect_and_auth(server.addr, &config, t))
        .collect::<Result<Vec<_>, _>>()?;
    let rx_streams = streams.split_off(s_count);
    let proto = GotalkProto::new(&receivers);
    drive(&proto, streams, rx_streams, shape, server.pid())
}
