//! Unit tests of the line parser (`parse.rs`): each command's text and
//! JSON forms, and the malformed inputs each is refused with.

use super::*;

fn call(line: &str) -> Call<'_> {
    parse_line(line.as_bytes()).unwrap().call.unwrap()
}

fn error(line: &[u8]) -> Failure {
    parse_line(line).unwrap().call.unwrap_err()
}

#[test]
fn text_and_json_forms_agree() {
    let pairs = [
        (
            "REGISTER alice secret-words",
            r#"{"cmd":"register","username":"alice","password":"secret-words"}"#,
        ),
        (
            "login alice secret-words",
            r#"{"cmd":"LOGIN","username":"alice","password":"secret-words"}"#,
        ),
        (
            "SEND bob hello there",
            r#"{"cmd":"send","to":"bob","content":"hello there"}"#,
        ),
        ("SYNC 17", r#"{"cmd":"sync","after":17}"#),
        ("ACK 17", r#"{"cmd":"ack","upto":17}"#),
        ("LOGOUT", r#"{"cmd":"logout"}"#),
        ("logout ALL", r#"{"cmd":"logout","all":true}"#),
        ("LOGOUT", r#"{"cmd":"logout","all":false}"#),
        ("Ping", r#"{"cmd":"ping"}"#),
        ("HELP", r#"{"cmd":"help"}"#),
        ("quit", r#"{"cmd":"quit"}"#),
    ];
    for (text, json) in pairs {
        assert_eq!(call(text), call(json), "{text}");
    }
}

#[test]
fn text_passwords_with_spaces_at_the_ends_or_inside_register_are_refused() {
    for line in [
        "REGISTER car ol pw",
        "REGISTER alice  pw",
        "REGISTER alice pw-secret ",
        "LOGIN alice pw-secret\t",
        "LOGIN alice  leading",
    ] {
        let f = error(line.as_bytes());
        assert_eq!(f.code, ErrorCode::BadRequest, "{line}");
        assert!(f.message.contains("JSON form"), "{line}: {}", f.message);
    }
    // Inside a LOGIN password, spaces are the password's own.
    assert!(matches!(
        call("LOGIN car ol pw").request,
        Request::Login { ref password, .. } if password == "ol pw"
    ));
    assert!(matches!(
        call("REGISTER car ol-pw").request,
        Request::Register { ref password, .. } if password == "ol-pw"
    ));
}

#[test]
fn each_line_says_which_form_it_was_in() {
    let form = |line: &str| parse_line(line.as_bytes()).unwrap().form;
    assert_eq!(form("HELP"), Form::Text);
    assert_eq!(form("  help"), Form::Text);
    assert_eq!(form("FLY away"), Form::Text);
    assert_eq!(form(r#"{"cmd":"help"}"#), Form::Json);
    assert_eq!(form(r#"{"cmd":"help","tag":1"#), Form::Json);
}

#[test]
fn send_text_keeps_the_content_verbatim() {
    let c = call("SEND bob   two  spaces  ");
    match c.request {
        Request::Send { content, .. } => assert_eq!(content, "  two  spaces  "),
        other => panic!("{other:?}"),
    }
}

#[test]
fn json_fields_borrow_and_unescape() {
    let c = call(r#"{"cmd":"send","to_id":2,"content":"a\nb","client_id":"c1","token":"t"}"#);
    assert_eq!(c.token.as_deref(), Some("t"));
    match c.request {
        Request::Send {
            to,
            content,
            client_id,
        } => {
            assert_eq!(to, Recipient::Id(2));
            assert_eq!(content, "a\nb");
            assert_eq!(client_id.as_deref(), Some("c1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tags_of_any_json_type_are_kept() {
    for tag in ["7", "\"x\"", "null", "{\"a\":[1]}"] {
        let line = format!(r#"{{"cmd":"ping","tag":{tag}}}"#);
        let parsed = parse_line(line.as_bytes()).unwrap();
        assert_eq!(parsed.tag.unwrap().get(), tag);
    }
    let parsed = parse_line(br#"{"cmd":"sync","after":"x","tag":5}"#).unwrap();
    assert!(parsed.call.is_err());
    assert_eq!(parsed.tag.unwrap().get(), "5");
}

#[test]
fn blank_lines_are_ignored() {
    assert!(parse_line(b"").is_none());
    assert!(parse_line(b"   \t").is_none());
}

#[test]
fn each_bad_input_has_its_own_message() {
    let cases: [(&[u8], ErrorCode, &str); 13] = [
        (b"PING \xff", ErrorCode::BadRequest, "UTF-8"),
        (b"PING\0", ErrorCode::BadRequest, "NUL"),
        (b"{\"cmd\":", ErrorCode::BadRequest, "invalid JSON"),
        (b"[1,2]", ErrorCode::BadRequest, "must be an object"),
        (
            b"{\"cmd\":5}",
            ErrorCode::BadRequest,
            "\"cmd\" must be a string",
        ),
        (
            b"{\"cmd\":\"ack\",\"upto\":-1}",
            ErrorCode::BadRequest,
            "\"upto\" must be",
        ),
        (
            b"{\"cmd\":\"ack\"}",
            ErrorCode::BadRequest,
            "needs an \"upto\"",
        ),
        (
            b"{\"to\":\"bob\"}",
            ErrorCode::BadRequest,
            "needs a \"cmd\"",
        ),
        (
            b"{\"cmd\":\"fly\"}",
            ErrorCode::UnknownCommand,
            "unknown command 'fly'",
        ),
        (b"FLY away", ErrorCode::UnknownCommand, "HELP"),
        (b"SEND bob", ErrorCode::BadRequest, "usage: SEND"),
        (b"LOGOUT everyone", ErrorCode::BadRequest, "usage: LOGOUT"),
        (
            b"{\"cmd\":\"logout\",\"all\":\"yes\"}",
            ErrorCode::BadRequest,
            "\"all\" must be true or false",
        ),
    ];
    for (line, code, text) in cases {
        let f = error(line);
        assert_eq!(f.code, code, "{}", String::from_utf8_lossy(line));
        assert!(f.message.contains(text), "{:?} lacks {text:?}", f.message);
    }
}

#[test]
fn json_lines_with_bad_bytes_are_bad_requests() {
    for line in [
        &b"{\"cmd\":\"send\",\"to\":\"bob\",\"content\":\"a\0b\"}"[..],
        b"{\"cmd\":\"send\",\"to\":\"bob\",\"content\":\"\xff\"}",
        b"{\"cmd\":\"ping\"}\xff",
    ] {
        let f = error(line);
        assert_eq!(f.code, ErrorCode::BadRequest);
        assert!(
            f.message.starts_with("invalid JSON") || f.message.contains("UTF-8"),
            "{}: {}",
            String::from_utf8_lossy(line),
            f.message
        );
    }
    assert!(parse_line(b"  \t{\"cmd\":\"ping\"}").unwrap().call.is_ok());
}

#[test]
fn sync_text_takes_up_to_three_numbers() {
    assert_eq!(call("SYNC").request, Request::Sync(SyncArgs::default()));
    assert_eq!(
        call("SYNC 5 10 2000").request,
        Request::Sync(SyncArgs {
            after: Some(5),
            limit: Some(10),
            wait_ms: 2000
        })
    );
    assert_eq!(error(b"SYNC x").code, ErrorCode::BadRequest);
    assert_eq!(error(b"SYNC 1 2 3 4").code, ErrorCode::BadRequest);
    assert_eq!(error(b"ACK").code, ErrorCode::BadRequest);
}

#[test]
fn a_tag_is_echoed_only_up_to_its_limit() {
    let at_limit = format!("\"{}\"", "t".repeat(limits::MAX_TAG_BYTES - 2));
    let line = format!(r#"{{"cmd":"ping","tag":{at_limit}}}"#);
    let parsed = parse_line(line.as_bytes()).unwrap();
    assert_eq!(parsed.tag.map(RawValue::get), Some(at_limit.as_str()));
    assert!(parsed.call.is_ok());
    let over = [
        format!("\"{}\"", "t".repeat(limits::MAX_TAG_BYTES - 1)),
        format!("[{}1]", "1,".repeat(limits::MAX_TAG_BYTES / 2)),
        format!("{{\"k\":\"{}\\n\"}}", "x".repeat(limits::MAX_TAG_BYTES)),
    ];
    for tag in over {
        for line in [
            format!(r#"{{"cmd":"ping","tag":{tag}}}"#),
            // Also when another field is wrong, or the command unknown.
            format!(r#"{{"cmd":"ack","upto":"x","tag":{tag}}}"#),
            format!(r#"{{"cmd":"fly","tag":{tag}}}"#),
        ] {
            let parsed = parse_line(line.as_bytes()).unwrap();
            assert!(parsed.tag.is_none(), "{line}");
            let f = parsed.call.unwrap_err();
            assert_eq!(f.code, ErrorCode::BadRequest, "{line}");
            assert_eq!(f.message, "a tag is at most 256 bytes of JSON", "{line}");
        }
    }
}

#[test]
fn trailing_garbage_after_json_is_an_error() {
    assert_eq!(error(b"{\"cmd\":\"ping\"} x").code, ErrorCode::BadRequest);
}

#[test]
fn history_read_and_conversations_in_both_forms() {
    use crate::request::HistoryArgs;
    let bob = |before, limit| {
        Request::History(HistoryArgs {
            with: Recipient::Name("bob".into()),
            before,
            limit,
        })
    };
    assert_eq!(call("HISTORY bob").request, bob(None, None));
    assert_eq!(call("history bob 120 50").request, bob(Some(120), Some(50)));
    assert_eq!(
        call(r#"{"cmd":"history","with":"bob","before":120,"limit":50}"#).request,
        bob(Some(120), Some(50))
    );
    assert_eq!(
        call(r#"{"cmd":"history","with_id":2}"#).request,
        Request::History(HistoryArgs {
            with: Recipient::Id(2),
            before: None,
            limit: None,
        })
    );
    let read = Request::Read {
        with: Recipient::Name("alice".into()),
        upto: 17,
    };
    assert_eq!(call("READ alice 17").request, read);
    assert_eq!(
        call(r#"{"cmd":"read","with":"alice","upto":17}"#).request,
        read
    );
    assert_eq!(
        call("CONVERSATIONS").request,
        Request::Conversations {
            before: None,
            limit: None
        }
    );
    assert_eq!(
        call(r#"{"cmd":"conversations","before":9,"limit":5}"#).request,
        Request::Conversations {
            before: Some(9),
            limit: Some(5)
        }
    );
    for bad in [
        &b"HISTORY"[..],
        b"HISTORY bob x",
        b"HISTORY bob 1 2 3",
        b"READ alice",
        b"READ 17",
        b"CONVERSATIONS x",
        br#"{"cmd":"history"}"#,
        br#"{"cmd":"history","with":"bob","limit":-1}"#,
        br#"{"cmd":"history","with":"bob","limit":"5"}"#,
        br#"{"cmd":"read","with":"alice"}"#,
        br#"{"cmd":"read","upto":3}"#,
    ] {
        let line = String::from_utf8_lossy(bad);
        assert_eq!(error(bad).code, ErrorCode::BadRequest, "{line}");
    }
}
