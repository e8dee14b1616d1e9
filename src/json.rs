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
    // serde_json's escaping is correct; writing to a Vec cannot fail.
    serde_json::to_writer(&mut *out, s).expect("writing JSON to memory cannot fail");
}

/// Appends a decimal unsigned integer.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let len = n.checked_ilog10().map_or(1, |d| d as usize + 1);
    let mut digits = [b'0'; 20];
    for slot in digits[..len].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
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
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 1_764_160_000_000, u64::MAX] {
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
