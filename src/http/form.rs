//! Form fields of one request: from an `application/x-www-form-urlencoded`
//! body and from the query string, decoded with `form_urlencoded` (`+` is a
//! space, `%XX` a byte; bytes that are not UTF-8 become U+FFFD).
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
        let pairs = form_urlencoded::parse(body)
            .chain(form_urlencoded::parse(query.as_bytes()))
            .collect();
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
    fn bad_bytes_become_replacement_characters() {
        let f = fields("c=%FF", "");
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
