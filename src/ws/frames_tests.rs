//! The frame decoder's tests: each limit's violation, fragments, and input
//! fed one byte at a time reaching the same messages.

use super::*;

/// A client frame: `first` byte (FIN, RSV, opcode), masked `payload`.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65_536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    let mut body = payload.to_vec();
    unmask(&mut body, mask);
    out.extend_from_slice(&body);
    out
}

/// What decoding `input` gave, fed in chunks of `chunk` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Text(String),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
    Fail(Violation),
}

fn decode(input: &[u8], chunk: usize, max: usize) -> Vec<Seen> {
    let mut decoder = Decoder::new(max);
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        let mut pos = 0;
        loop {
            match decoder.next(&mut buf[pos..]) {
                Step::Text { text, consumed } => {
                    seen.push(Seen::Text(String::from_utf8(text.to_vec()).unwrap()));
                    pos += consumed;
                }
                Step::Assembled { text, consumed } => {
                    seen.push(Seen::Text(String::from_utf8(text).unwrap()));
                    pos += consumed;
                }
                Step::Fragment { consumed } => pos += consumed,
                Step::Ping { payload, consumed } => {
                    seen.push(Seen::Ping(payload.to_vec()));
                    pos += consumed;
                }
                Step::Pong { consumed } => {
                    seen.push(Seen::Pong);
                    pos += consumed;
                }
                Step::Close { code, consumed } => {
                    seen.push(Seen::Close(code));
                    pos += consumed;
                }
                Step::NeedMore => break,
                Step::Fail(v) => {
                    seen.push(Seen::Fail(v));
                    return seen;
                }
            }
        }
        buf.drain(..pos);
    }
    seen
}

#[test]
fn messages_pings_and_a_close_read_the_same_whole_or_byte_by_byte() {
    let mut input = frame(0x81, b"{\"cmd\":\"ping\"}");
    input.extend(frame(0x89, b"hi"));
    input.extend(frame(0x01, b"SEND bob "));
    input.extend(frame(0x8a, b""));
    input.extend(frame(0x00, "h\u{e9}".as_bytes()));
    input.extend(frame(0x80, b"llo"));
    input.extend(frame(0x81, &[b'x'; 70_000]));
    input.extend(frame(0x88, &[0x03, 0xe8, b'o', b'k']));
    let expected = vec![
        Seen::Text("{\"cmd\":\"ping\"}".into()),
        Seen::Ping(b"hi".to_vec()),
        Seen::Pong,
        Seen::Text("SEND bob h\u{e9}llo".into()),
        Seen::Text("x".repeat(70_000)),
        Seen::Close(Some(1000)),
    ];
    for chunk in [1, 2, 7, 100, input.len()] {
        assert_eq!(
            decode(&input, chunk, 100_000),
            expected,
            "chunks of {chunk}"
        );
    }
}

#[test]
fn each_bad_frame_has_its_violation() {
    let unmasked = {
        let mut f = vec![0x81, 0x02];
        f.extend_from_slice(b"hi");
        f
    };
    let cases: Vec<(Vec<u8>, Violation)> = vec![
        (frame(0x81, &[b'x'; 101]), Violation::TooBig),
        (frame(0x81, &[0xff, 0xfe]), Violation::InvalidUtf8),
        (frame(0x82, b"bin"), Violation::Binary),
        (
            unmasked,
            Violation::Protocol("client frames must be masked"),
        ),
        (frame(0xc1, b"x"), Violation::Protocol("reserved bits set")),
        (frame(0x83, b"x"), Violation::Protocol("unknown opcode")),
        (frame(0x8b, b"x"), Violation::Protocol("unknown opcode")),
        (
            frame(0x09, b"x"),
            Violation::Protocol("fragmented control frame"),
        ),
        (
            frame(0x89, &[0; 126]),
            Violation::Protocol("control frame over 125 bytes"),
        ),
        (
            frame(0x80, b"x"),
            Violation::Protocol("continuation without a message"),
        ),
        (
            [frame(0x01, b"a"), frame(0x81, b"b")].concat(),
            Violation::Protocol("new message inside a fragmented one"),
        ),
        (
            frame(0x88, &[0x03]),
            Violation::Protocol("close frame of one byte"),
        ),
        (
            frame(0x88, &[0x03, 0xed]),
            Violation::Protocol("close code not allowed"),
        ),
        (frame(0x88, &[0x03, 0xe8, 0xff]), Violation::InvalidUtf8),
        // Fragments add up against the limit, and their UTF-8 is judged whole.
        (
            [frame(0x01, &[b'x'; 60]), frame(0x80, &[b'x'; 41])].concat(),
            Violation::TooBig,
        ),
        (
            [frame(0x01, &[0xc3]), frame(0x80, &[0x28])].concat(),
            Violation::InvalidUtf8,
        ),
    ];
    for (input, violation) in cases {
        assert_eq!(
            decode(&input, 1, 100).last(),
            Some(&Seen::Fail(violation)),
            "{violation:?}"
        );
    }
    assert_eq!(Violation::TooBig.code(), CloseCode::Size);
    assert_eq!(Violation::Binary.code(), CloseCode::Unsupported);
    assert_eq!(Violation::InvalidUtf8.code(), CloseCode::Invalid);
    assert_eq!(Violation::Protocol("x").code(), CloseCode::Protocol);
}

#[test]
fn an_oversized_frame_is_refused_from_its_header_alone() {
    // 2^62 bytes announced: judged before any payload arrives.
    let mut input = vec![0x81, 0x80 | 127];
    input.extend_from_slice(&(1u64 << 62).to_be_bytes());
    input.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(
        decode(&input, 3, 1 << 20),
        vec![Seen::Fail(Violation::TooBig)]
    );
    // A fragment split in two still fits when the whole does.
    let fits = [frame(0x01, &[b'x'; 50]), frame(0x80, &[b'x'; 50])].concat();
    assert_eq!(decode(&fits, 5, 100), vec![Seen::Text("x".repeat(100))]);
    // Control frames between fragments are answered in between.
    let between = [frame(0x01, b"a"), frame(0x89, b""), frame(0x80, b"b")].concat();
    assert_eq!(
        decode(&between, 1, 100),
        vec![Seen::Ping(vec![]), Seen::Text("ab".into())]
    );
}

#[test]
fn unmasking_eight_bytes_at_a_time_is_the_bytewise_xor() {
    let mask = [0x12, 0x34, 0x56, 0x78];
    for n in 0..40 {
        let data: Vec<u8> = (0..n as u8).map(|b| b.wrapping_mul(37)).collect();
        let mut fast = data.clone();
        unmask(&mut fast, mask);
        let slow: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(fast, slow, "{n} bytes");
    }
}
