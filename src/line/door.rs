//! The line protocol door: runs the complete lines of a connection's input
//! through the core, writing replies in request order. Stops at a barrier
//! (a request the next one must wait for) or when the client is not reading
//! its replies; the rest of the input waits in the buffer.

use crate::config::limits::OUTPUT_PAUSE_BYTES;
use crate::conn::{AfterReply, Conn, Door, ReplyContext};
use crate::core::Handled;
use crate::error::{ErrorCode, Failure};
use crate::line::framer::Step;
use crate::line::parse::{parse_line, Parsed};
use crate::line::render::reply_line;
use crate::request::Reply;
use crate::turn::Turn;
use crate::ConnId;
use serde_json::value::RawValue;

/// Runs every complete line in `conn.inbuf` that may run now.
pub fn process(id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>) {
    let Door::Line(mut framer) = conn.door else {
        return;
    };
    let input = std::mem::take(&mut conn.inbuf);
    let mut pos = 0;
    while conn.accepts_requests(OUTPUT_PAUSE_BYTES) {
        match framer.next(&input[pos..]) {
            Step::Line { line, consumed } => {
                pos += consumed;
                if let Some(parsed) = parse_line(line) {
                    run(id, conn, turn, parsed);
                }
            }
            Step::TooLong { consumed } => {
                pos += consumed;
                let failure = Failure::new(
                    ErrorCode::TooLarge,
                    format!(
                        "the line is longer than {} bytes; it was discarded",
                        turn.config.max_line
                    ),
                );
                let seq = turn.ticket(id).seq;
                answer(conn, seq, None, &Reply::Error(failure));
            }
            Step::Skip { consumed } => pos += consumed,
            Step::NeedMore => break,
        }
    }
    conn.door = Door::Line(framer);
    conn.inbuf = input;
    conn.consume_input(pos);
}

fn run(id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>, parsed: Parsed<'_>) {
    let ticket = turn.ticket(id);
    let call = match parsed.call {
        Ok(call) => call,
        Err(failure) => {
            log::debug!("connection {id}: {failure}");
            return answer(conn, ticket.seq, parsed.tag, &Reply::Error(failure));
        }
    };
    match turn.core.handle(ticket, call, turn.now, turn.outbox) {
        Handled::Now(reply) => answer(conn, ticket.seq, parsed.tag, &reply),
        Handled::Later { barrier } => {
            conn.defer(
                ticket.seq,
                ReplyContext::Line(parsed.tag.map(RawValue::to_owned)),
            );
            if barrier {
                conn.barrier = Some(ticket.seq);
            }
        }
    }
}

/// Writes a reply that is ready now: straight into the output when nothing
/// is pending before it (no allocation), else in its place in line.
fn answer(conn: &mut Conn, seq: u64, tag: Option<&RawValue>, reply: &Reply) {
    if conn.in_order() {
        reply_line(conn.out_mut(), reply, tag);
        conn.apply(AfterReply {
            close: matches!(reply, Reply::Bye),
            once_flushed: None,
        });
    } else {
        conn.reply_now(seq, ReplyContext::Line(tag.map(RawValue::to_owned)), reply);
    }
}
