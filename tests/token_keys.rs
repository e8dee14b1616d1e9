//! Rotating the token key, over a real server: a token sealed before
//! `gotalk rotate-key` still opens after the restart that takes up the new
//! key, new tokens carry the new key id, and a token in the format before
//! key ids (v2, sealed under a raw 32-byte key file) opens as key id 0.

mod common;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn rotate(data: &TempDir) -> CliRun {
    let run = run_cli(
        &["rotate-key", "--data", data.arg()],
        Duration::from_secs(10),
    );
    assert!(
        run.status.is_some_and(|s| s.success()),
        "rotate-key failed: {run:?}"
    );
    run
}

/// The key id in front of a v3 token (its first 8 hex digits).
fn key_id(token: &str) -> u32 {
    assert_eq!(token.len(), 144, "a v3 token: {token}");
    u32::from_str_radix(&token[..8], 16).unwrap()
}

#[test]
fn a_token_from_before_rotate_key_still_opens_and_new_ones_use_the_new_key() {
    let data = TempDir::new("token-keys-rotate");
    let mut server = TestServer::start(&["--data", data.arg()]);
    let (_, before, _) = register_and_login(&server, "alice", "alice-password");
    assert_eq!(key_id(&before), 0);
    server.kill();

    let run = rotate(&data);
    assert!(run.stdout.contains("key 1 is now the current"), "{run:?}");
    assert!(
        run.stdout.contains("token key 0: still opens tokens"),
        "{run:?}"
    );
    let key_file = data.path().join("secret.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    server.start_again();
    let mut client = server.connect();
    assert_ok(&client.text(&format!("AUTH {before}")));
    let (after, _) = login(&mut client, "alice", "alice-password");
    assert_eq!(key_id(&after), 1);
    assert_ok(&server.connect().text(&format!("AUTH {after}")));
}

/// Seals a token as servers before key ids did: nonce | AES-256-GCM of
/// (user, identity, issued, expires) with the AAD "gotalk token v2".
fn seal_v2(key: &[u8; 32], user: u64, identity: u128, expires: u64) -> String {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let mut plain = Vec::new();
    plain.extend_from_slice(&user.to_be_bytes());
    plain.extend_from_slice(&identity.to_be_bytes());
    plain.extend_from_slice(&0u64.to_be_bytes());
    plain.extend_from_slice(&expires.to_be_bytes());
    let nonce = [7u8; 12];
    let payload = Payload {
        msg: &plain,
        aad: b"gotalk token v2",
    };
    let sealed = cipher.encrypt(Nonce::from_slice(&nonce), payload).unwrap();
    nonce
        .iter()
        .chain(&sealed)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn identity_of(db: &Path, user: u64) -> u128 {
    let conn = rusqlite::Connection::open(db).unwrap();
    let bytes: Vec<u8> = conn
        .query_row(
            "SELECT identity FROM users WHERE id = ?1",
            [user as i64],
            |r| r.get(0),
        )
        .unwrap();
    u128::from_be_bytes(bytes.try_into().unwrap())
}

#[test]
fn a_v2_token_under_a_raw_key_file_opens_as_key_id_0_also_after_rotation() {
    let data = TempDir::new("token-keys-v2");
    let raw = [42u8; 32];
    let key_file = data.path().join("secret.key");
    std::fs::write(&key_file, raw).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut server = TestServer::start(&["--data", data.arg()]);
    let (_, _, id) = register_and_login(&server, "alice", "alice-password");
    server.kill();
    let identity = identity_of(&data.path().join("gotalk.db"), id);
    let v2 = seal_v2(&raw, id, identity, u64::MAX);
    assert_eq!(v2.len(), 136);
    let forged = seal_v2(&[1u8; 32], id, identity, u64::MAX);

    server.start_again();
    let mut client = server.connect();
    assert_ok(&client.text(&format!("AUTH {v2}")));
    assert_error(&client.text(&format!("AUTH {forged}")), "unauthorized");
    server.kill();

    rotate(&data);
    let text = std::fs::read_to_string(&key_file).unwrap();
    let key0 = "2a".repeat(32);
    assert!(text.contains(&format!("\n0 {key0}\n")), "{text}");
    server.start_again();
    let mut client = server.connect();
    assert_ok(&client.text(&format!("AUTH {v2}")));
    // LOGOUT revokes a v2 token too.
    assert_ok(&client.text("LOGOUT"));
    assert_error(
        &server.connect().text(&format!("AUTH {v2}")),
        "unauthorized",
    );
}

#[test]
fn rotate_key_refuses_a_key_file_others_can_read() {
    let data = TempDir::new("token-keys-shared");
    let key_file = data.path().join("secret.key");
    std::fs::write(&key_file, [1u8; 32]).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = run_cli(
        &["rotate-key", "--data", data.arg()],
        Duration::from_secs(10),
    );
    assert!(run.status.is_some_and(|s| !s.success()), "{run:?}");
    assert!(run.stderr.contains("chmod 600"), "{run:?}");
    assert_eq!(std::fs::read(&key_file).unwrap(), [1u8; 32], "unchanged");
}
