//! The fields a JSON request may carry, and how serde reads them: strings
//! borrowed from the line where they have no escapes, and an error that
//! names the field whose value has the wrong type.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A JSON string, borrowed from the line when it has no escapes.
#[derive(Debug)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Every field a JSON request may carry; unknown fields are ignored.
#[derive(Debug, Default)]
pub struct JsonRequest<'a> {
    pub cmd: Option<Text<'a>>,
    pub tag: Option<&'a RawValue>,
    pub token: Option<Text<'a>>,
    pub username: Option<Text<'a>>,
    pub password: Option<Text<'a>>,
    pub to: Option<Text<'a>>,
    pub to_id: Option<u64>,
    pub content: Option<Text<'a>>,
    pub client_id: Option<Text<'a>>,
    pub after: Option<u64>,
    pub limit: Option<u64>,
    pub wait_ms: Option<u64>,
    pub upto: Option<u64>,
    pub all: Option<bool>,
    /// HISTORY and READ: the other party, by name or id.
    pub with: Option<Text<'a>>,
    pub with_id: Option<u64>,
    /// HISTORY and CONVERSATIONS: only ids below this.
    pub before: Option<u64>,
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonRequest<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonRequest<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut r = JsonRequest::default();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let key = key.0;
                    macro_rules! field {
                        ($slot:expr, $what:literal) => {{
                            let value = map.next_value().map_err(|_| {
                                de::Error::custom(format!("\"{key}\" must be {}", $what))
                            })?;
                            $slot = value;
                        }};
                    }
                    match &*key {
                        "cmd" => field!(r.cmd, "a string"),
                        "tag" => r.tag = Some(map.next_value::<&RawValue>()?),
                        "token" => field!(r.token, "a string"),
                        "username" => field!(r.username, "a string"),
                        "password" => field!(r.password, "a string"),
                        "to" => field!(r.to, "a string (a username)"),
                        "to_id" => field!(r.to_id, "a user id (a whole number)"),
                        "content" => field!(r.content, "a string"),
                        "client_id" => field!(r.client_id, "a string"),
                        "after" => field!(r.after, "a message id (a whole number >= 0)"),
                        "limit" => field!(r.limit, "a whole number >= 1"),
                        "wait_ms" => field!(r.wait_ms, "a whole number of milliseconds"),
                        "upto" => field!(r.upto, "a message id (a whole number >= 0)"),
                        "all" => field!(r.all, "true or false"),
                        "with" => field!(r.with, "a string (a username)"),
                        "with_id" => field!(r.with_id, "a user id (a whole number)"),
                        "before" => field!(r.before, "a message id (a whole number >= 0)"),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}
