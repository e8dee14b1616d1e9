//! A full disk: SEND is refused (`unavailable`, naming the full disk) and
//! nothing is half-stored, but ACK, the one request that frees space,
//! still works; the log says once that the disk is full and once that
//! space is back; well-behaved clients keep being served throughout.
//!
//! The server runs on a small tmpfs mounted for the test (the tests run as
//! root). If it cannot be mounted the test fails, saying why.

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

/// A tmpfs of a fixed size, unmounted (and its mount point removed) when
/// dropped.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    #[track_caller]
    fn mount(size: &str) -> Tmpfs {
        let dir = TempDir::new("tmpfs");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `mount` to make a small disk: {e}"));
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs at {} (this test needs root, as the \
             test machine provides): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Content of one message: large, so the disk fills in a few hundred SENDs.
const CONTENT_BYTES: usize = 32 * 1024;

#[test]
fn ack_frees_space_on_a_full_disk_and_the_log_says_so_once() {
    let disk = Tmpfs::mount("24m");
    let data: PathBuf = disk.path().join("data");
    // One sender fills the disk: its own budget of unacknowledged bytes
    // must not stop it first.
    let server = TestServer::start(&[
        "--data",
        data.to_str().unwrap(),
        "--pending-bytes-per-sender",
        "1073741824",
    ]);

    let mut alice = server.connect();
    register(&mut alice, "alice", "pw-secret");
    let (alice_token, _) = login(&mut alice, "alice", "pw-secret");
    let mut setup = server.connect();
    register(&mut setup, "bob", "pw-secret");
    let (mut carol, _, _) = register_and_login(&server, "carol", "pw-secret");

    // Fill the disk with messages to bob (who is not online, so nothing is
    // pushed) until SEND is refused.
    let mut stored = Vec::new();
    let mut refusal = None;
    for n in 0..2_000 {
        let content = format!("{n:06} {}", "x".repeat(CONTENT_BYTES));
        let reply = alice.request(&json!({"cmd": "send", "to": "bob", "content": content}));
        if reply["ok"] == true {
            stored.push(sent_id(&reply));
        } else {
            refusal = Some(reply);
            break;
        }
    }
    let refusal = refusal.expect("2,000 SENDs of 32 KiB did not fill a 24 MiB disk");
    assert_error(&refusal, "unavailable");
    assert!(
        error_message(&refusal).contains("disk is full"),
        "the refusal says why: {refusal}"
    );
    assert!(stored.len() > 100, "only {} SENDs fit", stored.len());
    // Refused again, not half-stored.
    let reply = alice.request(&json!({"cmd": "send", "to": "bob", "content": "one more"}));
    assert_error(&reply, "unavailable");

    // A bystander is still served, and so is a lookup.
    assert_eq!(carol.text("PING")["pong"], true);
    assert_ok(&carol.request(&json!({"cmd": "sync"})));

    // Bob reads and acknowledges everything while alice keeps sending
    // (so ACKs share loop turns with SENDs): every ACK is ok, and he gets
    // every message whose SEND was answered ok, and no other.
    let flood = {
        let addr = server.addr();
        thread::spawn(move || {
            let mut c = LineClient::connect(addr);
            assert_ok(&c.text(&format!("AUTH {alice_token}")));
            let mut ok = Vec::new();
            for n in 0..300 {
                let reply = c.text(&format!("SEND bob flood {n}"));
                if reply["ok"] == true {
                    ok.push(sent_id(&reply));
                } else {
                    assert_error(&reply, "unavailable");
                }
            }
            ok
        })
    };
    let mut bob = server.connect();
    login(&mut bob, "bob", "pw-secret");
    let mut received = Vec::new();
    let mut sync_and_ack_all = |bob: &mut LineClient| {
        for _ in 0..2_000 {
            let ids = message_ids(&bob.text("SYNC 0 100"));
            let Some(&last) = ids.last() else { break };
            received.extend(ids);
            let ack = bob.text(&format!("ACK {last}"));
            assert_ok(&ack);
        }
    };
    sync_and_ack_all(&mut bob);
    stored.extend(flood.join().expect("the sending thread panicked"));
    sync_and_ack_all(&mut bob);
    stored.sort_unstable();
    received.sort_unstable();
    assert_eq!(received, stored, "bob gets exactly the stored messages");
    assert_eq!(message_ids(&bob.text("SYNC")), Vec::<u64>::new());

    // The log said it once, and says when space is back.
    assert!(
        server.wait_for_stderr("disk space is available again", Duration::from_secs(30)),
        "no recovery line in the log:\n{}",
        server.stderr_text()
    );
    let log = server.stderr_text();
    assert_eq!(
        log.matches("disk is full").count(),
        1,
        "the log says once that the disk is full:\n{log}"
    );

    // With the space back, SEND works again.
    let reply = alice.request(&json!({"cmd": "send", "to": "bob", "content": "room again"}));
    let id = sent_id(&reply);
    assert_eq!(message_ids(&bob.text("SYNC")), vec![id]);
    assert_eq!(carol.text("PING")["pong"], true);
}
