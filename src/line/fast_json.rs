//! A fast path for the JSON requests programs send most: a flat object
//! whose values are plain strings (no backslash, no control byte) or
//! unsigned integers. Such a line is read in one pass without serde's
//! generic machinery. Anything else — escapes, nesting, other value types,
//! malformed JSON — returns `None` and goes to serde_json, so the result
//! never differs from what serde_json would give.

use super::json_request::{JsonRequest, Text};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A value the fast path understands, with where it stands in the line.
enum Value<'a> {
    Str(&'a str),
    Num(u64),
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string without escapes or control bytes, quotes excluded.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let bytes = self.text.as_bytes();
        let len = bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if bytes[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        Some(&self.text[start..start + len])
    }

    /// An unsigned integer in JSON's form (no leading zeros) that fits u64.
    fn number(&mut self) -> Option<u64> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(d) = bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.at += 1;
        }
        let len = self.at - start;
        if len == 0 || (len > 1 && bytes[start] == b'0') {
            return None;
        }
        Some(n)
    }

    fn value(&mut self) -> Option<(Value<'a>, &'a str)> {
        let start = self.at;
        let value = match self.peek()? {
            b'"' => Value::Str(self.string()?),
            b'0'..=b'9' => Value::Num(self.number()?),
            _ => return None,
        };
        Some((value, &self.text[start..self.at]))
    }
}

/// Reads `text` (which starts with `{`) into `r` if the fast path
/// understands it; returns false (with `r` to be discarded) otherwise.
pub fn parse_into<'a>(text: &'a str, r: &mut JsonRequest<'a>) -> bool {
    read(text, r).is_some()
}

fn read<'a>(text: &'a str, r: &mut JsonRequest<'a>) -> Option<()> {
    let mut p = Cursor { text, at: 0 };
    p.skip_ws();
    p.eat(b'{')?;
    p.skip_ws();
    if p.eat(b'}').is_none() {
        loop {
            let key = p.string()?;
            p.skip_ws();
            p.eat(b':')?;
            p.skip_ws();
            let (value, raw) = p.value()?;
            assign(r, key, value, raw)?;
            p.skip_ws();
            match p.peek()? {
                b',' => {
                    p.at += 1;
                    p.skip_ws();
                }
                b'}' => {
                    p.at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    p.skip_ws();
    (p.at == text.len()).then_some(())
}

/// Puts a value in its field; `None` when its type is wrong for the field
/// (serde then reports the error).
fn assign<'a>(r: &mut JsonRequest<'a>, key: &str, value: Value<'a>, raw: &'a str) -> Option<()> {
    let text = |v: Value<'a>| match v {
        Value::Str(s) => Some(Some(Text(Cow::Borrowed(s)))),
        Value::Num(_) => None,
    };
    let number = |v: Value<'a>| match v {
        Value::Num(n) => Some(Some(n)),
        Value::Str(_) => None,
    };
    match key {
        "cmd" => r.cmd = text(value)?,
        "token" => r.token = text(value)?,
        "username" => r.username = text(value)?,
        "password" => r.password = text(value)?,
        "to" => r.to = text(value)?,
        "content" => r.content = text(value)?,
        "client_id" => r.client_id = text(value)?,
        "to_id" => r.to_id = number(value)?,
        "after" => r.after = number(value)?,
        "limit" => r.limit = number(value)?,
        "wait_ms" => r.wait_ms = number(value)?,
        "upto" => r.upto = number(value)?,
        "with" => r.with = text(value)?,
        "with_id" => r.with_id = number(value)?,
        "before" => r.before = number(value)?,
        // A flag: serde reads it (and says when it is not true or false).
        "all" => return None,
        "tag" => r.tag = Some(serde_json::from_str::<&RawValue>(raw).ok()?),
        _ => {}
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn serde_reads(text: &str) -> Option<String> {
        let mut de = serde_json::Deserializer::from_str(text);
        let r = JsonRequest::deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(format!("{r:?}"))
    }

    /// The fast path either declines or agrees with serde exactly.
    fn check(text: &str) -> bool {
        let mut fast = JsonRequest::default();
        if !parse_into(text, &mut fast) {
            return false;
        }
        assert_eq!(Some(format!("{fast:?}")), serde_reads(text), "{text}");
        true
    }

    #[test]
    fn common_requests_take_the_fast_path() {
        for line in [
            r#"{"cmd":"send","to":"bob","content":"hello there","tag":7}"#,
            r#"{ "cmd" : "sync" , "after" : 17 , "limit" : 100 , "wait_ms" : 0 }"#,
            r#"{"cmd":"ack","upto":18446744073709551615}"#,
            r#"{"cmd":"send","to_id":2,"content":"é 日本","client_id":"c-1","tag":"t"}"#,
            r#"{"cmd":"ping","unknown":"x","other":5}"#,
            r#"{"cmd":"ping","cmd":"help"}"#,
            r#"{}"#,
            "{\"cmd\":\"ping\"}  \t",
        ] {
            assert!(check(line), "declined: {line}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_serde() {
        for line in [
            r#"{"cmd":"send","to":"bob","content":"a\nb"}"#,
            r#"{"cmd":"ping","tag":[1,2]}"#,
            r#"{"cmd":"ping","tag":null}"#,
            r#"{"cmd":"ack","upto":-1}"#,
            r#"{"cmd":"ack","upto":01}"#,
            r#"{"cmd":"ack","upto":1.5}"#,
            r#"{"cmd":"ack","upto":18446744073709551616}"#,
            r#"{"cmd":"ack","upto":"5"}"#,
            r#"{"cmd":5}"#,
            r#"{"cmd":"ping",}"#,
            r#"{"cmd":"ping"} x"#,
            r#"{"cmd":"ping""#,
            "{\"cmd\":\"pi\u{1}ng\"}",
            r#"{"c\u006dd":"ping"}"#,
            r#"{"cmd":"ping","x":true}"#,
        ] {
            assert!(
                !parse_into(line, &mut JsonRequest::default()),
                "accepted: {line}"
            );
        }
    }

    /// Random objects built from pieces that exercise both paths: wherever
    /// the fast path answers, it agrees with serde.
    #[test]
    fn random_objects_agree_with_serde() {
        let keys = [
            "\"cmd\"",
            "\"to\"",
            "\"to_id\"",
            "\"tag\"",
            "\"upto\"",
            "\"content\"",
            "\"x\"",
            "\"c\\md\"",
        ];
        let values = [
            "\"send\"",
            "\"\"",
            "0",
            "7",
            "007",
            "-1",
            "1e3",
            "\"a\\\"b\"",
            "[1]",
            "null",
            "\"é\"",
            "99999999999999999999",
        ];
        let spaces = ["", " ", "\t", "  "];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut fast = 0;
        for _ in 0..20_000 {
            let mut line = String::from("{");
            for i in 0..next(5) {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(spaces[next(spaces.len())]);
                line.push_str(keys[next(keys.len())]);
                line.push_str(spaces[next(spaces.len())]);
                line.push(':');
                line.push_str(values[next(values.len())]);
                line.push_str(spaces[next(spaces.len())]);
            }
            line.push('}');
            if check(&line) {
                fast += 1;
            }
        }
        assert!(fast > 1000, "the fast path should answer often ({fast})");
    }
}
