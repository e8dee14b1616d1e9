//! The HTTP compatibility shim (the original goTalk's form posts).
//! Not built yet: every request is answered `501 Not Implemented` and the
//! connection is closed.

use crate::conn::{AfterReply, Conn};
use crate::request::Reply;
use crate::turn::Turn;
use crate::ConnId;

/// Per-connection HTTP parsing state.
#[derive(Default)]
pub struct HttpState {}

/// How to render the reply of one HTTP request.
pub struct ReplyContext {}

impl ReplyContext {
    pub fn render(&self, _reply: &Reply, _out: &mut Vec<u8>) -> AfterReply {
        AfterReply {
            close: true,
            once_flushed: None,
        }
    }
}

/// Runs the complete HTTP requests in `conn.inbuf`.
pub fn process(_id: ConnId, conn: &mut Conn, _turn: &mut Turn<'_>) {
    let body = b"{\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":\"the HTTP shim is not built yet\"}}";
    let out = conn.out_mut();
    out.extend_from_slice(
        format!(
            "HTTP/1.1 501 Not Implemented\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    conn.inbuf = Vec::new();
    conn.closing = Some(crate::error::CloseReason::ClientQuit);
}
