//! Tests of the login and registration throttles (`login_throttle.rs`),
//! through their public methods: buckets per username and address, known
//! addresses, the bucket of a new address, lookups, overflow and pruning.

use super::login_throttle::*;
use crate::Millis;
use std::net::IpAddr;

const T0: Millis = 1_700_000_000_000;

/// The flags' defaults, without the buckets of new addresses (0), so the
/// shared bucket is seen alone.
fn settings() -> ThrottleSettings {
    ThrottleSettings {
        login_failures_per_minute: 10,
        login_failure_burst: 5,
        login_failures_per_address_minute: 30,
        registers_per_address_hour: 20,
        entries: 1000,
        lookups_per_address_minute: 60,
        login_tries_per_new_address_hour: 0,
        logins_per_account_minute: 1000,
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

/// Failed LOGINs of `name` from `peer` at `now` until one is refused;
/// returns how many were admitted and the refusal.
fn fail_until_throttled(
    t: &mut LoginThrottle,
    name: &str,
    peer: IpAddr,
    now: Millis,
) -> (usize, Throttled) {
    for n in 0.. {
        if let Err(refused) = t.admit_login(name, peer, now) {
            return (n, refused);
        }
    }
    unreachable!()
}

#[test]
fn an_account_takes_a_burst_then_ten_failures_a_minute_from_any_addresses() {
    let mut t = LoginThrottle::new(settings());
    // Attempts from many addresses (one each, so no address bucket
    // runs dry) share the username's bucket.
    let mut admitted = 0;
    let mut last = 0;
    for ms in (0..60_000u64).step_by(500) {
        let peer = ip((ms / 500) as u8);
        if t.admit_login("alice", peer, T0 + ms).is_ok() {
            admitted += 1;
            last = ms;
        }
    }
    assert_eq!(admitted, 5 + 9, "a burst of 5, then one every 6 s");
    assert_eq!(last, 54_000);
    let refused = t.admit_login("alice", ip(200), T0 + 59_999).unwrap_err();
    assert_eq!(
        refused,
        Throttled {
            retry_after_ms: 1,
            by_address: false,
            logins: false,
        }
    );
}

#[test]
fn one_address_is_throttled_across_usernames() {
    let mut t = LoginThrottle::new(settings());
    let mut admitted = 0;
    for n in 0..100 {
        if t.admit_login(&format!("user{n}"), ip(1), T0).is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10, "twice the burst");
    let refused = t.admit_login("anyone", ip(1), T0).unwrap_err();
    assert_eq!(refused.retry_after_ms, 2_000, "30 a minute");
    assert!(refused.by_address);
    assert!(t.admit_login("anyone", ip(2), T0).is_ok());
}

#[test]
fn the_owner_from_a_known_address_is_not_locked_out() {
    let mut t = LoginThrottle::new(settings());
    let home = ip(1);
    let charge = t.admit_login("alice", home, T0).unwrap();
    t.login_succeeded(charge, T0);
    // Guessing from elsewhere empties alice's shared bucket ...
    let (n, refused) = fail_until_throttled(&mut t, "alice", ip(66), T0 + 1);
    assert_eq!(n, 5);
    assert!(!refused.by_address);
    assert!(t.admit_login("alice", ip(67), T0 + 1).is_err());
    // ... while her own address has its own bucket, and a successful
    // login gives its token back, so she logs in again and again.
    for k in 0..20 {
        let charge = t.admit_login("alice", home, T0 + 2 + k).unwrap();
        t.login_succeeded(charge, T0 + 2 + k);
    }
    // Failures from her address are throttled at the same rate.
    let (n, _) = fail_until_throttled(&mut t, "alice", home, T0 + 100);
    assert_eq!(n, 5);
}

#[test]
fn a_known_address_is_forgotten_after_30_days_and_only_4_are_kept() {
    let mut t = LoginThrottle::new(settings());
    for last in 1..=5 {
        t.registered("alice", ip(last), T0 + u64::from(last));
    }
    fail_until_throttled(&mut t, "alice", ip(99), T0 + 10);
    assert!(t.admit_login("alice", ip(1), T0 + 10).is_err(), "evicted");
    assert!(t.admit_login("alice", ip(2), T0 + 10).is_ok());
    let later = T0 + 10 + KNOWN_ADDRESS_MS;
    fail_until_throttled(&mut t, "alice", ip(99), later);
    assert!(t.admit_login("alice", ip(3), later).is_err(), "expired");
}

#[test]
fn unknown_and_known_usernames_are_throttled_alike() {
    let mut t = LoginThrottle::new(settings());
    t.registered("alice", ip(1), T0);
    let known = fail_until_throttled(&mut t, "alice", ip(50), T0);
    let unknown = fail_until_throttled(&mut t, "nobody", ip(60), T0);
    assert_eq!(known, unknown);
}

#[test]
fn registrations_per_address_per_hour() {
    let mut t = LoginThrottle::new(settings());
    for _ in 0..20 {
        t.admit_register(ip(1), T0).unwrap();
    }
    assert_eq!(t.admit_register(ip(1), T0).unwrap_err(), 180_000);
    assert!(t.admit_register(ip(2), T0).is_ok());
    let charge = t.admit_register(ip(1), T0 + 180_000).unwrap();
    assert!(t.admit_register(ip(1), T0 + 180_000).is_err());
    t.register_failed(charge);
    assert!(t.admit_register(ip(1), T0 + 180_000).is_ok());
}

#[test]
fn full_tables_share_an_overflow_bucket_and_idle_entries_are_pruned() {
    let mut t = LoginThrottle::new(ThrottleSettings {
        entries: 4,
        ..settings()
    });
    t.registered("alice", ip(1), T0);
    for n in 0..3 {
        t.admit_login(&format!("u{n}"), ip(10 + n), T0).unwrap();
    }
    assert_eq!(t.len().0, 4);
    // New names now share one bucket: five failures in all.
    let mut admitted = 0;
    for n in 0..20 {
        if t.admit_login(&format!("x{n}"), ip(20 + n), T0).is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5);
    assert_eq!(t.len().0, 4, "alice's known address was not evicted");
    // Later the failures' buckets are full again and forgotten.
    while t.prune(T0 + 60_000) {}
    assert_eq!(t.len(), (1, 0, 0));
}

#[test]
fn guesses_from_many_addresses_do_not_lock_the_owner_out_of_a_new_address() {
    let mut t = LoginThrottle::new(ThrottleSettings {
        login_tries_per_new_address_hour: 3,
        ..settings()
    });
    // One guess each from 50 addresses: the shared bucket runs dry, and
    // each address that goes on uses up its own small bucket.
    for last in 0..50 {
        let _ = t.admit_login("alice", ip(last), T0);
    }
    let (n, refused) = fail_until_throttled(&mut t, "alice", ip(7), T0);
    assert_eq!(n, 2, "3 of its own, one used");
    assert!(!refused.by_address);
    assert_eq!(
        refused.retry_after_ms, 6_000,
        "the shared bucket refills first"
    );
    // The owner, from an address never seen, is admitted, and a right
    // password gives the token back: again and again.
    for k in 0..10 {
        let charge = t.admit_login("alice", ip(100), T0 + k).unwrap();
        t.login_succeeded(charge, T0 + k);
    }
    // Its bucket is its own: another address's is untouched by it.
    assert!(t.admit_login("alice", ip(101), T0 + 20).is_ok());
    // Guessing from everywhere is bounded: the shared rate plus 3 an hour
    // from each address (which also pays its address bucket).
    let (n, _) = fail_until_throttled(&mut t, "alice", ip(102), T0 + 20);
    assert_eq!(n, 3);
}

#[test]
fn zero_tries_for_new_addresses_keeps_the_shared_bucket_alone() {
    let mut t = LoginThrottle::new(settings());
    for last in 0..50 {
        let _ = t.admit_login("alice", ip(last), T0);
    }
    assert!(t.admit_login("alice", ip(100), T0).is_err());
}

#[test]
fn lookups_take_from_a_bucket_per_address() {
    let mut t = LoginThrottle::new(ThrottleSettings {
        lookups_per_address_minute: 3,
        ..settings()
    });
    for _ in 0..3 {
        t.admit_lookup(ip(1), T0).unwrap();
    }
    assert_eq!(t.lookup_wait(ip(1), T0), Some(20_000));
    assert_eq!(t.admit_lookup(ip(1), T0).unwrap_err(), 20_000);
    // IPv6 is counted by /64.
    let a: IpAddr = "2001:db8::1".parse().unwrap();
    let b: IpAddr = "2001:db8::2".parse().unwrap();
    for _ in 0..3 {
        t.admit_lookup(a, T0).unwrap();
    }
    assert!(t.admit_lookup(b, T0).is_err());
    assert!(t.admit_lookup(ip(2), T0).is_ok());
    let taken = t.admit_lookup(ip(1), T0 + 20_000).unwrap();
    t.lookup_not_done(taken);
    assert!(t.lookup_wait(ip(1), T0 + 20_000).is_none());
}

#[test]
fn successful_logins_of_one_account_are_rate_limited() {
    let mut t = LoginThrottle::new(ThrottleSettings {
        logins_per_account_minute: 3,
        ..settings()
    });
    for _ in 0..3 {
        let charge = t.admit_login("alice", ip(1), T0).unwrap();
        t.login_succeeded(charge, T0);
    }
    let refused = t.admit_login("alice", ip(2), T0).unwrap_err();
    assert!(refused.logins && !refused.by_address);
    assert_eq!(refused.retry_after_ms, 20_000, "3 a minute: one per 20 s");
    assert!(t.admit_login("bob", ip(1), T0).is_ok(), "per account");
    assert!(t.admit_login("alice", ip(1), T0 + 20_000).is_ok());
}
