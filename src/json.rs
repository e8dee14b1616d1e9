//! Small helpers that append JSON fragments to a byte buffer. Replies on the
//! hot path are written straight into a connection's output buffer with
//! these, instead of building a `serde_json::Value` per reply.

/// Appends `s` as a JSON string literal (quoted and escaped).
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        // Nothing to escape (the usual case): copy it between quotes.
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    push_escaped(out, bytes);
}

/// How each byte is escaped: its escape's bytes, padded to eight so that
/// one unaligned store writes any of them, and their length (0: the byte
/// is not escaped). The same choices as serde_json: `\b \t \n \f \r \" \\`
/// by name, other control characters as `\u00XX`.
const ESCAPES: [([u8; 8], u8); 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut table = [([0u8; 8], 0u8); 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = (
            [b'\\', b'u', b'0', b'0', HEX[b >> 4], HEX[b & 0xf], 0, 0],
            6,
        );
        b += 1;
    }
    let named = [
        (0x08, b'b'),
        (0x09, b't'),
        (0x0a, b'n'),
        (0x0c, b'f'),
        (0x0d, b'r'),
        (b'"' as usize, b'"'),
        (b'\\' as usize, b'\\'),
    ];
    let mut i = 0;
    while i < named.len() {
        table[named[i].0] = ([b'\\', named[i].1, 0, 0, 0, 0, 0, 0], 2);
        i += 1;
    }
    table
};

/// Slack after the worst case: an escape is written as eight bytes, of
/// which the last two may lie past its six.
const STORE_SLACK: usize = 2;

/// The slow path of [`push_str`]: room for the worst case (six bytes for
/// every control character) is reserved once, runs without escapes are
/// copied whole, and each escape is one eight-byte store. 60 KB of control
/// characters (360 KB escaped) is a pass at memory speed rather than a
/// bounds-checked write per byte: a message like that is rendered once, but
/// on the loop thread, while every other client waits.
#[cold]
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let worst = bytes.len() * 6 + 2;
    out.reserve(worst + STORE_SLACK);
    let at = out.len();
    let src = bytes.as_ptr();
    // SAFETY: `out` has room for `worst + STORE_SLACK` bytes past `at`.
    // After byte i is handled, `w <= 1 + 6 * (i + 1)`, so the quote, every
    // copied run, every eight-byte store (at most `1 + 6 * i + 8`) and the
    // closing quote all stay within that room; everything up to `at + w + 1`
    // is written before `set_len`, and `src` is read below `bytes.len()`.
    unsafe {
        let dst = out.as_mut_ptr().add(at);
        dst.write(b'"');
        let mut w = 1;
        let mut run = 0;
        for i in 0..bytes.len() {
            let (escape, len) = ESCAPES[*src.add(i) as usize];
            if len == 0 {
                continue;
            }
            if i > run {
                std::ptr::copy_nonoverlapping(src.add(run), dst.add(w), i - run);
                w += i - run;
            }
            dst.add(w).cast::<[u8; 8]>().write_unaligned(escape);
            w += len as usize;
            run = i + 1;
        }
        let tail = bytes.len() - run;
        std::ptr::copy_nonoverlapping(src.add(run), dst.add(w), tail);
        w += tail;
        dst.add(w).write(b'"');
        out.set_len(at + w + 1);
    }
}

/// "00" to "99", for writing two digits per division.
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Appends a decimal unsigned integer, two digits per division (a
/// timestamp is 13 digits, and every message and reply carries several
/// numbers).
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let len = n.checked_ilog10().map_or(1, |d| d as usize + 1);
    let mut digits = [b'0'; 20];
    let mut end = len;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        digits[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
        end -= 2;
    }
    if n >= 10 {
        let pair = n as usize * 2;
        digits[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        digits[end - 1] = b'0' + n as u8;
    }
    // Copying all 20 bytes and cutting back is a few vector moves; copying
    // exactly `len` bytes would be a call to memcpy per number.
    let start = out.len();
    out.extend_from_slice(&digits);
    out.truncate(start + len);
}

/// Appends `"key":` (the key must need no escaping). Inlined so that the
/// key is a constant where it is called, and copied without a call.
#[inline(always)]
pub fn push_key(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends `,"key":<n>`.
#[inline(always)]
pub fn push_field_u64(out: &mut Vec<u8>, key: &str, n: u64) {
    out.push(b',');
    push_key(out, key);
    push_u64(out, n);
}

/// Appends `,"key":"<escaped s>"`.
#[inline(always)]
pub fn push_field_str(out: &mut Vec<u8>, key: &str, s: &str) {
    out.push(b',');
    push_key(out, key);
    push_str(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        push_str(&mut out, "a\"b\\c\n\u{1}é");
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\n\u0001é""#);
    }

    #[test]
    fn plain_strings_take_the_fast_path_with_the_same_result() {
        for s in [
            "",
            "hello there",
            "é ü 日本",
            "tab\there",
            "quote\"",
            "back\\slash",
            "\u{7f}",
        ] {
            let mut fast = Vec::new();
            push_str(&mut fast, s);
            assert_eq!(fast, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn escapes_match_serde_json_for_every_character_class() {
        let every_ascii: String = (0u8..128).map(char::from).collect();
        let control: String = (0u8..0x20).map(char::from).cycle().take(1000).collect();
        for s in [
            every_ascii.as_str(),
            control.as_str(),
            "\u{1}start and end\u{1f}",
            "mixed \"é\" \\ 日本\n\r\t\u{8}\u{c}",
        ] {
            let mut ours = b"prefix".to_vec();
            push_str(&mut ours, s);
            let mut expected = b"prefix".to_vec();
            expected.extend(serde_json::to_vec(s).unwrap());
            assert_eq!(ours, expected, "{s:?}");
        }
    }

    /// Every escape is an eight-byte store into room reserved for the
    /// worst case: strings that end on an escape, right at a buffer's
    /// capacity, must neither write past it nor leave stray bytes.
    #[test]
    fn escapes_at_the_end_of_exact_capacity_buffers_match_serde_json() {
        for len in 0..40 {
            for last in ['\u{1}', '\n', '"', 'x'] {
                let s: String = (0..len)
                    .map(|i| if i % 3 == 0 { '\u{1f}' } else { 'a' })
                    .chain([last])
                    .collect();
                let mut ours = Vec::with_capacity(0);
                push_str(&mut ours, &s);
                assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
                let mut exact = Vec::with_capacity(3);
                exact.extend_from_slice(b"ab");
                exact.shrink_to_fit();
                push_str(&mut exact, &s);
                assert_eq!(&exact[2..], &serde_json::to_vec(&s).unwrap()[..], "{s:?}");
            }
        }
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let edges = (1..20).flat_map(|d| {
            let p = 10u64.pow(d);
            [p - 1, p, p + 1, p + 9]
        });
        for n in [0, 7, 10, 99, 1_764_160_000_000, u64::MAX]
            .into_iter()
            .chain(edges)
        {
            let mut out = b"x".to_vec();
            push_u64(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn fields_append_with_commas() {
        let mut out = b"{\"ok\":true".to_vec();
        push_field_u64(&mut out, "id", 17);
        push_field_str(&mut out, "to", "bob");
        out.push(b'}');
        assert_eq!(out, br#"{"ok":true,"id":17,"to":"bob"}"#);
    }
}
#[cfg(test)]
mod probe_speed {
    #[test]
    fn probe_escape_speed() {
        let s: String = (1u8..32).map(char::from).cycle().take(60000).collect();
        let mut out = Vec::new();
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            out.clear();
            super::push_str(&mut out, &s);
        }
        eprintln!(
            "PROBE {:?} per escape, {} bytes",
            t.elapsed() / 1000,
            out.len()
        );
    }
}
