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

/// How each byte is escaped: 0 not at all, `u` as `\u00XX`, else as a
/// backslash and that byte (the same choices as serde_json).
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The slow path of [`push_str`]: room for the worst case (six bytes for
/// every control character) is made once, and runs without escapes are
/// copied whole, so even 64 KiB of control characters costs about a
/// hundred microseconds, not a write call per character.
#[cold]
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    // Written by index into room made for the worst case, then cut back:
    // no capacity check per byte.
    let at = out.len();
    out.resize(at + bytes.len() * 6 + 2, 0);
    let buf = &mut out[at..];
    buf[0] = b'"';
    let mut w = 1;
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[b as usize];
        if escape == 0 {
            continue;
        }
        if i > run {
            // Back to back escapes (a run of control characters) copy
            // nothing between them: no call per character.
            buf[w..w + (i - run)].copy_from_slice(&bytes[run..i]);
            w += i - run;
        }
        if escape == b'u' {
            buf[w..w + 6].copy_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
            w += 6;
        } else {
            buf[w] = b'\\';
            buf[w + 1] = escape;
            w += 2;
        }
        run = i + 1;
    }
    buf[w..w + (bytes.len() - run)].copy_from_slice(&bytes[run..]);
    w += bytes.len() - run;
    buf[w] = b'"';
    out.truncate(at + w + 1);
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
