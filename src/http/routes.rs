//! Which endpoint a method and path name, and the [`Call`] an endpoint's
//! form fields make. Fields are only read and translated here: whether a
//! name is valid, a token genuine, an `id` the token's own, a recipient
//! known, or content allowed is for the core to say, exactly as for the
//! line protocol.

use super::form::Fields;
use super::Refusal;
use crate::error::{ErrorCode, Failure};
use crate::request::{Call, HistoryArgs, Recipient, Request, SyncArgs};
use crate::UserId;
use std::borrow::Cow;

/// The form endpoints of the original goTalk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Register,
    Login,
    Lookup,
    Send,
    Sync,
    /// `POST /logout`: revoke the token given (or all the account's).
    Logout,
    /// `POST /history`, `/conversations` and `/read`: the line commands.
    History,
    Conversations,
    Read,
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A form post, run through the core.
    Api(Endpoint),
    /// `GET /` and the files the web chat page loads (`/app.js` and the
    /// scripts before it, `/app.css`, `/favicon.ico`).
    Page(Asset),
    /// `GET /healthz`: the server answers.
    Health,
    /// `GET /ws`: an upgrade to the WebSocket door.
    WebSocket,
}

const API_METHODS: &str = "POST";
const PAGE_METHODS: &str = "GET, HEAD";

/// One of the files the web page is made of (served by `page`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asset {
    Page,
    Script,
    Style,
    Favicon,
    /// `/cache.js`: the page's localStorage cache.
    CacheScript,
    /// `/transport.js`: form posts and the long-poll.
    TransportScript,
    /// `/convs.js`: conversation list, history pages, read markers.
    ConvsScript,
    /// `/ws.js`: the WebSocket transport.
    WsScript,
}

impl Asset {
    /// The asset served at `path`, if any.
    pub fn at(path: &str) -> Option<Asset> {
        Some(match path {
            "/" | "/index.html" => Asset::Page,
            "/app.js" => Asset::Script,
            "/app.css" => Asset::Style,
            "/favicon.ico" => Asset::Favicon,
            "/cache.js" => Asset::CacheScript,
            "/transport.js" => Asset::TransportScript,
            "/convs.js" => Asset::ConvsScript,
            "/ws.js" => Asset::WsScript,
            _ => return None,
        })
    }
}

/// Finds the route of `method` and `path`: 404 for an unknown path, 405
/// (with the methods it takes) for a known path asked the wrong way.
pub fn route(method: &str, path: &str) -> Result<Route, Refusal> {
    let (route, allowed) = match (path, Asset::at(path)) {
        (_, Some(asset)) => (Route::Page(asset), PAGE_METHODS),
        ("/register", _) => (Route::Api(Endpoint::Register), API_METHODS),
        ("/login", _) => (Route::Api(Endpoint::Login), API_METHODS),
        ("/getuseridbyname", _) => (Route::Api(Endpoint::Lookup), API_METHODS),
        ("/send", _) => (Route::Api(Endpoint::Send), API_METHODS),
        ("/sync", _) => (Route::Api(Endpoint::Sync), API_METHODS),
        ("/healthz", _) => (Route::Health, PAGE_METHODS),
        ("/logout", _) => (Route::Api(Endpoint::Logout), API_METHODS),
        ("/history", _) => (Route::Api(Endpoint::History), API_METHODS),
        ("/conversations", _) => (Route::Api(Endpoint::Conversations), API_METHODS),
        ("/read", _) => (Route::Api(Endpoint::Read), API_METHODS),
        ("/ws", _) => (Route::WebSocket, "GET"),
        _ => {
            let shown: String = path.chars().take(64).collect();
            return Err(Refusal::new(
                404,
                ErrorCode::NotFound,
                format!(
                    "there is nothing at {shown}; the endpoints are POST /register, /login, \
                     /getuseridbyname, /send, /sync, /logout, /history, /conversations and /read, \
                     GET / (the chat page) and GET /ws (a WebSocket)"
                ),
            ));
        }
    };
    let ok = match route {
        Route::Api(_) => method == "POST",
        Route::Page(_) | Route::Health => method == "GET" || method == "HEAD",
        Route::WebSocket => method == "GET",
    };
    if !ok {
        return Err(Refusal::new(
            405,
            ErrorCode::BadRequest,
            format!("{path} takes {allowed}, not {method}"),
        )
        .allow(allowed));
    }
    Ok(route)
}

/// The call an endpoint's fields make.
pub fn call<'f>(endpoint: Endpoint, fields: &'f Fields<'_>) -> Result<Call<'f>, Failure> {
    let required = |name: &'static str| {
        fields
            .get(name)
            .map(Cow::Borrowed)
            .ok_or_else(|| Failure::bad_request(format!("the field \"{name}\" is missing")))
    };
    let request = match endpoint {
        Endpoint::Register => Request::Register {
            username: required("username")?,
            password: required("password")?,
        },
        Endpoint::Login => Request::Login {
            username: required("username")?,
            password: required("password")?,
        },
        Endpoint::Lookup => Request::Lookup {
            username: required("username")?,
        },
        Endpoint::Send => {
            let id = match receiver_id(fields, "sendToId")? {
                Some(id) => Some(id),
                None => receiver_id(fields, "sendTo")?,
            };
            let to = match (id, fields.get("to")) {
                (Some(id), _) => Recipient::Id(id),
                (None, Some(name)) => Recipient::Name(Cow::Borrowed(name)),
                (None, None) => {
                    return Err(Failure::bad_request(
                        "say who the message is for: \"sendTo\" or \"sendToId\" (a user id), or \"to\" (a username)",
                    ))
                }
            };
            Request::Send {
                to,
                content: required("content")?,
                client_id: fields.get("client_id").map(Cow::Borrowed),
            }
        }
        Endpoint::Sync => Request::Sync(SyncArgs {
            after: number(fields, "after")?,
            limit: number(fields, "limit")?.map(|l| l.min(usize::MAX as u64) as usize),
            wait_ms: number(fields, "wait")?.unwrap_or(0),
        }),
        Endpoint::Logout => Request::Logout {
            all: flag(fields, "all")?,
        },
        Endpoint::History => Request::History(HistoryArgs {
            with: partner(fields)?,
            before: number(fields, "before")?,
            limit: number(fields, "limit")?,
        }),
        Endpoint::Conversations => Request::Conversations {
            before: number(fields, "before")?,
            limit: number(fields, "limit")?,
        },
        Endpoint::Read => Request::Read {
            with: partner(fields)?,
            upto: number(fields, "upto")?
                .ok_or_else(|| Failure::bad_request("the field \"upto\" is missing"))?,
        },
    };
    let (token, claimed_id) = match endpoint {
        Endpoint::Send
        | Endpoint::Sync
        | Endpoint::Logout
        | Endpoint::History
        | Endpoint::Conversations
        | Endpoint::Read => (Some(token(fields)?), claimed_id(fields)?),
        Endpoint::Register | Endpoint::Login | Endpoint::Lookup => (None, None),
    };
    Ok(Call {
        request,
        token,
        claimed_id,
    })
}

/// `/history`'s and `/read`'s other party: `with` (a username) or
/// `withId` (a user id).
fn partner<'f>(fields: &'f Fields<'_>) -> Result<Recipient<'f>, Failure> {
    match (number(fields, "withId")?, fields.get("with")) {
        (Some(id), _) => Ok(Recipient::Id(id)),
        (None, Some(name)) => Ok(Recipient::Name(Cow::Borrowed(name))),
        (None, None) => Err(Failure::bad_request(
            "say whose conversation: \"with\" (a username) or \"withId\" (a user id)",
        )),
    }
}

/// `token`, also spelled `Token` (the original's README).
fn token<'f>(fields: &'f Fields<'_>) -> Result<Cow<'f, str>, Failure> {
    fields
        .get("token")
        .or_else(|| fields.get("Token"))
        .map(Cow::Borrowed)
        .ok_or_else(|| {
            Failure::new(
                ErrorCode::Unauthorized,
                "the field \"token\" is missing; POST /login gives one (as SessionID)",
            )
        })
}

/// `id`: who the client says it is; the core checks it against the token.
fn claimed_id(fields: &Fields<'_>) -> Result<Option<UserId>, Failure> {
    number(fields, "id")
}

/// `sendTo` or `sendToId`: the receiver's user id, as the original's
/// clients sent it. A name there is refused with a pointer to `to`.
fn receiver_id(fields: &Fields<'_>, name: &'static str) -> Result<Option<u64>, Failure> {
    number(fields, name).map_err(|f| {
        Failure::bad_request(format!(
            "{}: \"{name}\" is the receiver's user id (POST /getuseridbyname gives it); \
             to name the receiver by username use \"to\"",
            f.message
        ))
    })
}

/// An optional yes/no field: `1` or `true` for yes; absent, `0` or
/// `false` for no.
fn flag(fields: &Fields<'_>, name: &'static str) -> Result<bool, Failure> {
    match fields.get(name) {
        None | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(other) => {
            let shown: String = other.chars().take(32).collect();
            Err(Failure::bad_request(format!(
                "\"{name}\" is 1 or true (or 0 or false), not '{shown}'"
            )))
        }
    }
}

/// An optional whole-number field: digits only.
fn number(fields: &Fields<'_>, name: &'static str) -> Result<Option<u64>, Failure> {
    let Some(text) = fields.get(name) else {
        return Ok(None);
    };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse() {
            return Ok(Some(n));
        }
    }
    let shown: String = text.chars().take(32).collect();
    Err(Failure::bad_request(format!(
        "\"{name}\" must be a whole number, not '{shown}'"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &str) -> Fields<'_> {
        Fields::parse(body.as_bytes(), "", None).unwrap()
    }

    #[test]
    fn paths_and_methods() {
        assert_eq!(route("POST", "/send"), Ok(Route::Api(Endpoint::Send)));
        assert_eq!(
            route("POST", "/getuseridbyname"),
            Ok(Route::Api(Endpoint::Lookup))
        );
        assert_eq!(route("GET", "/"), Ok(Route::Page(Asset::Page)));
        assert_eq!(route("HEAD", "/"), Ok(Route::Page(Asset::Page)));
        assert_eq!(route("GET", "/app.js"), Ok(Route::Page(Asset::Script)));
        assert_eq!(route("GET", "/app.css"), Ok(Route::Page(Asset::Style)));
        assert_eq!(
            route("GET", "/convs.js"),
            Ok(Route::Page(Asset::ConvsScript))
        );
        assert_eq!(route("GET", "/healthz"), Ok(Route::Health));
        assert_eq!(
            route("GET", "/favicon.ico"),
            Ok(Route::Page(Asset::Favicon))
        );
        let wrong = route("GET", "/send").unwrap_err();
        assert_eq!((wrong.status, wrong.allow), (405, Some("POST")));
        let wrong = route("POST", "/").unwrap_err();
        assert_eq!((wrong.status, wrong.allow), (405, Some("GET, HEAD")));
        assert_eq!(route("POST", "/Send").unwrap_err().status, 404);
        assert_eq!(route("GET", "/send/").unwrap_err().status, 404);
    }

    #[test]
    fn accounts_take_username_and_password() {
        let f = fields("username=alice&password=s+s");
        assert_eq!(
            call(Endpoint::Register, &f).unwrap(),
            Call::new(Request::Register {
                username: "alice".into(),
                password: "s s".into()
            })
        );
        assert!(matches!(
            call(Endpoint::Login, &f).unwrap().request,
            Request::Login { .. }
        ));
        let f = fields("username=alice");
        let missing = call(Endpoint::Login, &f).unwrap_err();
        assert_eq!(missing.code, ErrorCode::BadRequest);
        assert!(missing.message.contains("password"), "{}", missing.message);
        assert_eq!(
            call(Endpoint::Lookup, &f).unwrap().request,
            Request::Lookup {
                username: "alice".into()
            }
        );
    }

    #[test]
    fn send_reads_token_id_recipient_and_content() {
        let f =
            fields("Token=T&id=1&username=alice&sendToId=2&sendTo=3&to=bob&content=hi&client_id=c");
        let c = call(Endpoint::Send, &f).unwrap();
        assert_eq!(c.token.as_deref(), Some("T"));
        assert_eq!(c.claimed_id, Some(1));
        assert_eq!(
            c.request,
            Request::Send {
                to: Recipient::Id(2),
                content: "hi".into(),
                client_id: Some("c".into())
            }
        );
        let f = fields("token=T&to=bob&content=hi");
        let c = call(Endpoint::Send, &f).unwrap();
        assert_eq!(c.claimed_id, None);
        assert!(matches!(
            c.request,
            Request::Send { to: Recipient::Name(ref n), client_id: None, .. } if n == "bob"
        ));
    }

    #[test]
    fn send_to_is_an_id_as_in_the_original_and_to_is_a_name() {
        let to = |body: &str| -> Result<Recipient<'static>, Failure> {
            match call(Endpoint::Send, &fields(body))?.request {
                Request::Send {
                    to: Recipient::Id(id),
                    ..
                } => Ok(Recipient::Id(id)),
                Request::Send {
                    to: Recipient::Name(n),
                    ..
                } => Ok(Recipient::Name(n.into_owned().into())),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(to("token=T&sendTo=2&content=x"), Ok(Recipient::Id(2)));
        assert_eq!(
            to("token=T&sendTo=2&to=bob&content=x"),
            Ok(Recipient::Id(2))
        );
        assert_eq!(
            to("token=T&sendToId=&sendTo=4&content=x"),
            Ok(Recipient::Id(4))
        );
        assert_eq!(
            to("token=T&to=bob&content=x"),
            Ok(Recipient::Name("bob".into()))
        );
        let name_in_send_to = to("token=T&sendTo=bob&content=x").unwrap_err();
        assert_eq!(name_in_send_to.code, ErrorCode::BadRequest);
        assert!(
            name_in_send_to.message.contains("\"to\""),
            "{}",
            name_in_send_to.message
        );
        let nobody = to("token=T&content=x").unwrap_err();
        assert!(nobody.message.contains("sendTo"), "{}", nobody.message);
    }

    #[test]
    fn send_and_sync_errors() {
        let cases = [
            (Endpoint::Send, "to=bob&content=hi", ErrorCode::Unauthorized),
            (
                Endpoint::Send,
                "token=&to=bob&content=hi",
                ErrorCode::Unauthorized,
            ),
            (Endpoint::Send, "token=T&content=hi", ErrorCode::BadRequest),
            (Endpoint::Send, "token=T&to=bob", ErrorCode::BadRequest),
            (
                Endpoint::Send,
                "token=T&sendToId=x&content=hi",
                ErrorCode::BadRequest,
            ),
            (
                Endpoint::Send,
                "token=T&id=-1&to=b&content=hi",
                ErrorCode::BadRequest,
            ),
            (Endpoint::Sync, "id=1", ErrorCode::Unauthorized),
            (Endpoint::Sync, "token=T&after=1.5", ErrorCode::BadRequest),
            (Endpoint::Sync, "token=T&wait=soon", ErrorCode::BadRequest),
            (Endpoint::Sync, "token=T&limit=%2B5", ErrorCode::BadRequest),
            (
                Endpoint::Sync,
                "token=T&after=99999999999999999999",
                ErrorCode::BadRequest,
            ),
        ];
        for (endpoint, body, code) in cases {
            let f = fields(body);
            assert_eq!(call(endpoint, &f).unwrap_err().code, code, "{body}");
        }
    }

    #[test]
    fn sync_maps_after_wait_and_limit() {
        let f = fields("token=T&id=3&after=17&wait=2500&limit=10");
        let c = call(Endpoint::Sync, &f).unwrap();
        assert_eq!(c.claimed_id, Some(3));
        assert_eq!(
            c.request,
            Request::Sync(SyncArgs {
                after: Some(17),
                limit: Some(10),
                wait_ms: 2500
            })
        );
        let f = fields("token=T&after=");
        assert_eq!(
            call(Endpoint::Sync, &f).unwrap().request,
            Request::Sync(SyncArgs::default())
        );
    }
}
