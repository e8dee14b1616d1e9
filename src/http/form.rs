//! Form fields of one request: from an `application/x-www-form-urlencoded`
//! body and from the query string (`+` is a space, `%XX` a byte, a `%`
//! without two hex digits after it stays as it is). A name or value whose
//! bytes are not UTF-8 once decoded refuses the request with 400, as the
//! line protocol refuses such a line: nothing is stored with U+FFFD in
//! place of what the client sent.
//!
//! As in the original goTalk (Go's `FormValue`), a field in the body wins
//! over the same field in the query string, and the first of repeated
//! fields wins. A field given empty counts as absent, the way browsers post
//! empty form inputs.

use super::Refusal;
use crate::error::ErrorCode;
use std::borrow::Cow;

/// The decoded fields, body first, then query string.
pub struct Fields<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Fields<'a> {
    /// Decodes `body` (of type `content_type`) and `query`. A non-empty body
    /// of another type than a urlencoded form is refused with 415; a body
    /// without a type is read as a form (what `nc` users send).
    pub fn parse(
        body: &'a [u8],
        query: &'a str,
        content_type: Option<&[u8]>,
    ) -> Result<Fields<'a>, Refusal> {
        if !body.is_empty() && !content_type.is_none_or(is_form) {
            let shown = String::from_utf8_lossy(content_type.unwrap_or_default());
            let shown: String = shown.chars().take(64).collect();
            return Err(Refusal::new(
                415,
                ErrorCode::BadRequest,
                format!(
                    "the body is {shown}; send the fields as application/x-www-form-urlencoded (or in the query string)"
                ),
            ));
        }
        // The original's forms have five or six fields: room for eight
        // at once rather than growing one by one.
        let mut pairs = Vec::with_capacity(8);
        for input in [body, query.as_bytes()] {
            if let Some(plain) = plain_text(input) {
                // Nothing to decode and all UTF-8: fields are borrowed
                // slices of text checked once, not field by field.
                let mut start = 0;
                for end in memchr::memchr_iter(b'&', input).chain([input.len()]) {
                    // `&` and `=` are ASCII: the slices stay on characters.
                    let pair = &plain[start..end];
                    start = end + 1;
                    if pair.is_empty() {
                        continue;
                    }
                    let (name, value) = match memchr::memchr(b'=', pair.as_bytes()) {
                        Some(i) => (&pair[..i], &pair[i + 1..]),
                        None => (pair, ""),
                    };
                    pairs.push((Cow::Borrowed(name), Cow::Borrowed(value)));
                }
                continue;
            }
            for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
                let (name, value) = match memchr::memchr(b'=', pair) {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &b""[..]),
                };
                let name = text(decode(name), None)?;
                let value = text(decode(value), Some(&name))?;
                pairs.push((name, value));
            }
        }
        Ok(Fields { pairs })
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| &**v)
    }
}

/// `input` as text when it holds no `+` or `%` (so decoding changes
/// nothing) and is UTF-8 throughout: the common form, such as a token,
/// ids and plain content.
fn plain_text(input: &[u8]) -> Option<&str> {
    if memchr::memchr2(b'+', b'%', input).is_some() {
        return None;
    }
    std::str::from_utf8(input).ok()
}

/// Undoes urlencoding: `+` is a space, `%XX` the byte XX. Borrows when
/// there is nothing to undo.
fn decode(input: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr2(b'+', b'%', input).is_none() {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let byte = match input[i] {
            b'+' => b' ',
            b'%' => match (
                input.get(i + 1).and_then(hex),
                input.get(i + 2).and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    i += 2;
                    high << 4 | low
                }
                _ => b'%',
            },
            other => other,
        };
        out.push(byte);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(digit: &u8) -> Option<u8> {
    (*digit as char).to_digit(16).map(|d| d as u8)
}

/// Decoded bytes as text, or the 400 that says which field is not UTF-8
/// (`field` is the name a value belongs to; `None` for a name itself).
fn text<'a>(bytes: Cow<'a, [u8]>, field: Option<&str>) -> Result<Cow<'a, str>, Refusal> {
    let decoded = match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed),
        Cow::Owned(b) => String::from_utf8(b)
            .map(Cow::Owned)
            .map_err(|e| e.utf8_error()),
    };
    decoded.map_err(|e| {
        let what = match field {
            Some(name) => {
                let shown: String = name.chars().take(32).collect();
                format!("the field \"{shown}\"")
            }
            None => "a field name".to_string(),
        };
        Refusal::new(
            400,
            ErrorCode::BadRequest,
            format!(
                "{what} is not valid UTF-8 (bad byte at position {} once decoded); send form fields as UTF-8",
                e.valid_up_to()
            ),
        )
    })
}

/// `application/x-www-form-urlencoded`, any case, with or without parameters
/// such as `; charset=UTF-8`.
fn is_form(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(body: &'a str, query: &'a str) -> Fields<'a> {
        Fields::parse(
            body.as_bytes(),
            query,
            Some(b"application/x-www-form-urlencoded"),
        )
        .unwrap()
    }

    #[test]
    fn values_are_decoded() {
        let f = fields("content=hello+there%21%0A%E2%9C%93&to=b%26b", "");
        assert_eq!(f.get("content"), Some("hello there!\n\u{2713}"));
        assert_eq!(f.get("to"), Some("b&b"));
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn the_body_wins_over_the_query_and_the_first_wins_over_repeats() {
        let f = fields("a=body&a=again", "a=query&b=query");
        assert_eq!(f.get("a"), Some("body"));
        assert_eq!(f.get("b"), Some("query"));
    }

    #[test]
    fn empty_values_count_as_absent() {
        let f = fields("after=&id=", "after=5");
        assert_eq!(f.get("after"), Some("5"));
        assert_eq!(f.get("id"), None);
    }

    #[test]
    fn names_are_case_sensitive() {
        let f = fields("Token=T", "");
        assert_eq!(f.get("token"), None);
        assert_eq!(f.get("Token"), Some("T"));
    }

    #[test]
    fn percent_signs_without_two_hex_digits_stay() {
        let f = fields("a=100%&b=%zz&c=%4&d=%41%4a%4A", "");
        assert_eq!(f.get("a"), Some("100%"));
        assert_eq!(f.get("b"), Some("%zz"));
        assert_eq!(f.get("c"), Some("%4"));
        assert_eq!(f.get("d"), Some("AJJ"));
        let f = fields("noequals&=novalue&x=a=b", "");
        assert_eq!(f.get("noequals"), None);
        assert_eq!(f.get("x"), Some("a=b"));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_not_replaced() {
        let refuse = |body: &str, query: &str| {
            Fields::parse(body.as_bytes(), query, None)
                .err()
                .unwrap_or_else(|| panic!("{body:?} {query:?} was accepted"))
        };
        let r = refuse("content=ok%FF%FE", "");
        assert_eq!((r.status, r.code), (400, ErrorCode::BadRequest));
        assert!(r.message.contains("\"content\""), "{}", r.message);
        assert!(r.message.contains("UTF-8"), "{}", r.message);
        assert!(r.message.contains("position 2"), "{}", r.message);
        assert!(refuse("", "to=%C3").message.contains("\"to\""));
        assert!(refuse("%FF=x", "").message.contains("field name"));
        // A genuine U+FFFD, sent as its UTF-8 bytes, is only a character.
        let f = fields("c=%EF%BF%BD", "");
        assert_eq!(f.get("c"), Some("\u{fffd}"));
    }

    #[test]
    fn content_types_other_than_a_form_are_refused() {
        for ok in [
            &b"application/x-www-form-urlencoded"[..],
            b"Application/X-WWW-Form-Urlencoded; charset=UTF-8",
        ] {
            assert!(Fields::parse(b"a=1", "", Some(ok)).is_ok());
        }
        assert!(Fields::parse(b"a=1", "", None).is_ok());
        let refused = Fields::parse(b"{\"a\":1}", "", Some(b"application/json"))
            .err()
            .unwrap();
        assert_eq!(refused.status, 415);
        // An empty body of any type is no body at all.
        assert!(Fields::parse(b"", "a=1", Some(b"text/plain")).is_ok());
    }
}
