//! Throttles on guessing passwords and on creating accounts, checked before
//! any hashing so a refused attempt costs no CPU.
//!
//! LOGIN: every attempt takes a token from two buckets ([`bucket`]), given
//! back if the password was right, so only failures use them up:
//! - the peer address's bucket (`--login-failures-per-address-minute`,
//!   twice `--login-failure-burst` at once), whatever username it tries;
//! - the username's bucket (`--login-failures-per-minute`, at most
//!   `--login-failure-burst` at once), shared by every address — unless the
//!   address logged in to (or registered) that account in the last
//!   [`KNOWN_ADDRESS_MS`]: such an address uses a bucket of its own with
//!   the same rate, so the owner is not locked out by guesses from
//!   elsewhere. An account remembers its [`KNOWN_ADDRESSES`] most recent.
//!
//! - once the username's shared bucket is empty, an address gets a small
//!   bucket of its own for it (`--login-tries-per-new-address-hour`, that
//!   many at once): guesses from many addresses cannot lock the owner out
//!   of a new address for good; they log in at their address's first try.
//!
//! So one account's password can be guessed at most `--login-failures-per-
//! minute` times a minute (after the first burst) from any number of
//! addresses, plus as many from each address that logged in to it lately,
//! plus `--login-tries-per-new-address-hour` an hour from each other
//! address (bounded in turn by that address's own bucket).
//!
//! Name→id lookups (LOOKUP, `/getuseridbyname`, a SEND to a name that does
//! not exist) take from a bucket per address too
//! (`--lookups-per-address-minute`; see `keyed_buckets`).
//!
//! Usernames are keyed by a keyed hash of the name, whether an account has
//! it or not: an unknown name is throttled exactly like a known one, so the
//! replies say nothing about which names exist.
//!
//! Successful LOGINs take a token of their own too, from the username's
//! `logins` bucket (`--logins-per-account-minute`, that many at once),
//! checked with the others before any hashing: each success mints a token
//! (and its LOGOUT a revocation), so even the owner mints at a bounded
//! rate. Only successes use it, so it says nothing about which names exist.
//!
//! REGISTER: one bucket per address, `--registers-per-address-hour` at once
//! and that many an hour after.
//!
//! Each table holds at most `--throttle-entries` entries; entries that say
//! nothing (a full bucket, no recent login) are forgotten a step at a time.
//! When a table is full of live entries, new keys share one overflow bucket
//! of the same rate: guessing stays throttled, and existing entries (owners'
//! known addresses) are never evicted to make room.

use super::bucket::{Bucket, Rate};
use super::keyed_buckets::{KeyedBuckets, Taken};
use super::throttle_table::{Idle, ThrottleTable, PRUNE_STEP};
use crate::peer_addr::address_key;
use crate::Millis;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;

/// How long an address that logged in to an account keeps its own bucket.
pub const KNOWN_ADDRESS_MS: Millis = 30 * 24 * 60 * 60 * 1000;

/// Most addresses an account remembers (the most recent ones).
pub const KNOWN_ADDRESSES: usize = 4;

/// The throttles' figures (flags; see `config.rs`).
#[derive(Clone, Copy, Debug)]
pub struct ThrottleSettings {
    pub login_failures_per_minute: u64,
    pub login_failure_burst: u64,
    pub login_failures_per_address_minute: u64,
    pub registers_per_address_hour: u64,
    pub entries: usize,
    pub lookups_per_address_minute: u64,
    pub login_tries_per_new_address_hour: u64,
    pub logins_per_account_minute: u64,
}

impl ThrottleSettings {
    /// The figures of the flags.
    pub fn of(config: &crate::config::Config) -> ThrottleSettings {
        ThrottleSettings {
            login_failures_per_minute: config.login_failures_per_minute,
            login_failure_burst: config.login_failure_burst,
            login_failures_per_address_minute: config.login_failures_per_address_minute,
            registers_per_address_hour: config.registers_per_address_hour,
            entries: config.throttle_entries,
            lookups_per_address_minute: config.lookups_per_address_minute,
            login_tries_per_new_address_hour: config.login_tries_per_new_address_hour,
            logins_per_account_minute: config.logins_per_account_minute,
        }
    }

    fn login_rate(&self) -> Rate {
        Rate::per(
            self.logins_per_account_minute,
            60_000,
            self.logins_per_account_minute,
        )
    }

    fn account_rate(&self) -> Rate {
        Rate::per(
            self.login_failures_per_minute,
            60_000,
            self.login_failure_burst,
        )
    }

    fn address_rate(&self) -> Rate {
        Rate::per(
            self.login_failures_per_address_minute,
            60_000,
            self.login_failure_burst.saturating_mul(2),
        )
    }

    fn lookup_rate(&self) -> Rate {
        let n = self.lookups_per_address_minute;
        Rate::per(n, 60_000, n)
    }

    fn new_address_rate(&self) -> Rate {
        let n = self.login_tries_per_new_address_hour;
        Rate::per(n, 3_600_000, n)
    }

    fn register_rate(&self) -> Rate {
        Rate::per(
            self.registers_per_address_hour,
            3_600_000,
            self.registers_per_address_hour,
        )
    }
}

/// Why an attempt was refused, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_ms: u64,
    /// The address's bucket was empty (else the username's).
    pub by_address: bool,
    /// The username's successful LOGINs were used up (not its failures).
    pub logins: bool,
}

/// An address that logged in to an account, with its own bucket.
#[derive(Clone, Copy, Debug)]
struct KnownAddress {
    addr: IpAddr,
    last_login: Millis,
    bucket: Bucket,
}

/// One username's state.
#[derive(Default)]
struct NameState {
    shared: Bucket,
    known: [Option<KnownAddress>; KNOWN_ADDRESSES],
    /// Successful LOGINs (`--logins-per-account-minute`).
    logins: Bucket,
}

impl NameState {
    fn known_mut(&mut self, addr: IpAddr, now: Millis) -> Option<&mut KnownAddress> {
        self.known
            .iter_mut()
            .flatten()
            .find(|k| k.addr == addr && now.saturating_sub(k.last_login) < KNOWN_ADDRESS_MS)
    }

    /// Remembers `addr` as logged in at `now`, in place of the oldest.
    fn remember(&mut self, addr: IpAddr, now: Millis) {
        if let Some(k) = self.known.iter_mut().flatten().find(|k| k.addr == addr) {
            k.last_login = now;
            return;
        }
        let slot = self
            .known
            .iter_mut()
            .min_by_key(|k| k.map_or(0, |k| k.last_login))
            .expect("KNOWN_ADDRESSES > 0");
        *slot = Some(KnownAddress {
            addr,
            last_login: now,
            bucket: Bucket::default(),
        });
    }
}

impl Idle for NameState {
    fn idle(&self, now: Millis) -> bool {
        self.shared.is_full(now)
            && self.logins.is_full(now)
            && self
                .known
                .iter()
                .flatten()
                .all(|k| now.saturating_sub(k.last_login) >= KNOWN_ADDRESS_MS)
    }
}

/// An address's bucket.
#[derive(Default)]
struct AddressState(Bucket);

impl Idle for AddressState {
    fn idle(&self, now: Millis) -> bool {
        self.0.is_full(now)
    }
}

/// Which username bucket an attempt paid from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NameBucket {
    Shared,
    Known,
    Overflow,
    /// The address's own bucket for this username (the shared one was
    /// empty).
    NewAddress(Taken<u64>),
}

/// The tokens one LOGIN took, to give back if its password was right.
#[derive(Clone, Copy, Debug)]
pub struct LoginCharge {
    name: u64,
    addr: IpAddr,
    name_bucket: NameBucket,
    address_overflow: bool,
}

/// The token one REGISTER took.
#[derive(Clone, Copy, Debug)]
pub struct RegisterCharge {
    addr: IpAddr,
    overflow: bool,
}

impl RegisterCharge {
    /// The address the REGISTER came from.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
}

pub struct LoginThrottle {
    settings: ThrottleSettings,
    hash_key: RandomState,
    names: ThrottleTable<u64, NameState>,
    addresses: ThrottleTable<IpAddr, AddressState>,
    registers: ThrottleTable<IpAddr, AddressState>,
    /// Shared by new keys while their table is full.
    name_overflow: Bucket,
    address_overflow: Bucket,
    register_overflow: Bucket,
    /// Name→id lookups per address.
    lookups: KeyedBuckets<IpAddr>,
    /// Per (username, address): tries once the username's shared bucket
    /// is empty.
    new_addresses: KeyedBuckets<u64>,
    login_overflow: Bucket,
}

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> LoginThrottle {
        LoginThrottle {
            hash_key: RandomState::new(),
            names: ThrottleTable::new(settings.entries),
            addresses: ThrottleTable::new(settings.entries),
            registers: ThrottleTable::new(settings.entries),
            name_overflow: Bucket::default(),
            address_overflow: Bucket::default(),
            register_overflow: Bucket::default(),
            lookups: KeyedBuckets::new(settings.lookup_rate(), settings.entries),
            new_addresses: KeyedBuckets::new(settings.new_address_rate(), settings.entries),
            login_overflow: Bucket::default(),
            settings,
        }
    }

    pub fn settings(&self) -> ThrottleSettings {
        self.settings
    }

    /// A username's key: of its folded form, so `ALICE` and `alice` (one
    /// account name) share one bucket.
    fn name_key(&self, username: &str) -> u64 {
        self.hash_key.hash_one(crate::username::fold(username))
    }

    /// A LOGIN of `username` from `peer`: takes a token from the address's
    /// bucket and from the username's (its own for a known address), or
    /// says how long to wait, taking nothing.
    pub fn admit_login(
        &mut self,
        username: &str,
        peer: IpAddr,
        now: Millis,
    ) -> Result<LoginCharge, Throttled> {
        let (account_rate, address_rate) =
            (self.settings.account_rate(), self.settings.address_rate());
        let name = self.name_key(username);
        let addr = address_key(peer);
        let pair = self.hash_key.hash_one((name, addr));
        // Look both up (making entries as needed) and check before taking.
        let (address_bucket, address_overflow) = match self.addresses.entry(addr, now) {
            Some(state) => (&mut state.0, false),
            None => (&mut self.address_overflow, true),
        };
        let address_wait = address_bucket.wait(address_rate, now);
        // Successful LOGINs of this account (--logins-per-account-minute):
        // checked before anything is taken, so a refusal costs no tries.
        let login_rate = self.settings.login_rate();
        let logins_wait = match self.names.get_mut(&name) {
            Some(state) => state.logins.wait(login_rate, now),
            None => self.login_overflow.wait(login_rate, now),
        };
        if let (Some(wait), None) = (logins_wait, address_wait) {
            return Err(Throttled {
                retry_after_ms: wait,
                by_address: false,
                logins: true,
            });
        }
        let (name_bucket, which) = match self.names.entry(name, now) {
            Some(state) => {
                // The borrow checker cannot see the two arms are disjoint.
                if state.known_mut(addr, now).is_some() {
                    let known = state.known_mut(addr, now).expect("just found");
                    (&mut known.bucket, NameBucket::Known)
                } else {
                    (&mut state.shared, NameBucket::Shared)
                }
            }
            None => (&mut self.name_overflow, NameBucket::Overflow),
        };
        let mut name_wait = name_bucket.wait(account_rate, now);
        let mut which = which;
        let new_addresses = self.settings.login_tries_per_new_address_hour > 0;
        if which == NameBucket::Shared && name_wait.is_some() && new_addresses {
            // The shared bucket is empty: the address's own for this name.
            match self.new_addresses.wait(pair, now) {
                None if address_wait.is_none() => match self.new_addresses.take(pair, now) {
                    Ok(taken) => which = NameBucket::NewAddress(taken),
                    Err(wait) => name_wait = name_wait.min(Some(wait)),
                },
                None => {}
                Some(wait) => name_wait = name_wait.min(Some(wait)),
            }
            if let NameBucket::NewAddress(_) = which {
                name_wait = None;
            }
        }
        if address_wait.is_some() || name_wait.is_some() {
            let by_address = address_wait.unwrap_or(0) >= name_wait.unwrap_or(0);
            return Err(Throttled {
                retry_after_ms: address_wait.max(name_wait).unwrap_or(1),
                by_address,
                logins: false,
            });
        }
        if !matches!(which, NameBucket::NewAddress(_)) {
            name_bucket.take(account_rate, now);
        }
        address_bucket.take(address_rate, now);
        Ok(LoginCharge {
            name,
            addr,
            name_bucket: which,
            address_overflow,
        })
    }

    /// The LOGIN's password was right: its tokens go back, and its address
    /// is now known for the account.
    pub fn login_succeeded(&mut self, charge: LoginCharge, now: Millis) {
        self.login_not_tried(charge, now);
        let login_rate = self.settings.login_rate();
        match self.names.entry(charge.name, now) {
            Some(state) => {
                state.remember(charge.addr, now);
                state.logins.take(login_rate, now);
            }
            None => self.login_overflow.take(login_rate, now),
        }
    }

    /// The LOGIN was admitted but stopped before its password was checked
    /// (it waits for its account to be read, and is admitted again then):
    /// its tokens go back.
    pub fn login_not_tried(&mut self, charge: LoginCharge, now: Millis) {
        let (account_rate, address_rate) =
            (self.settings.account_rate(), self.settings.address_rate());
        match charge.address_overflow {
            true => self.address_overflow.give_back(address_rate),
            false => {
                if let Some(state) = self.addresses.get_mut(&charge.addr) {
                    state.0.give_back(address_rate);
                }
            }
        }
        match charge.name_bucket {
            NameBucket::Overflow => self.name_overflow.give_back(account_rate),
            NameBucket::NewAddress(taken) => self.new_addresses.give_back(taken),
            _ => {}
        }
        if let Some(state) = self.names.get_mut(&charge.name) {
            match charge.name_bucket {
                NameBucket::Shared => state.shared.give_back(account_rate),
                NameBucket::Known => {
                    if let Some(k) = state.known_mut(charge.addr, now) {
                        k.bucket.give_back(account_rate);
                    }
                }
                NameBucket::Overflow | NameBucket::NewAddress(_) => {}
            }
        }
    }

    /// A new account `username` was registered from `peer`: that address
    /// is known for it from now on.
    pub fn registered(&mut self, username: &str, peer: IpAddr, now: Millis) {
        let name = self.name_key(username);
        if let Some(state) = self.names.entry(name, now) {
            state.remember(address_key(peer), now);
        }
    }

    /// A name→id lookup from `peer`: takes a token from the address's
    /// lookup bucket, or says how long to wait.
    pub fn admit_lookup(&mut self, peer: IpAddr, now: Millis) -> Result<Taken<IpAddr>, u64> {
        self.lookups.take(address_key(peer), now)
    }

    /// How long a lookup from `peer` would wait (`None`: it may run now),
    /// taking nothing.
    pub fn lookup_wait(&mut self, peer: IpAddr, now: Millis) -> Option<u64> {
        self.lookups.wait(address_key(peer), now)
    }

    /// The lookup stopped before its answer (it waits for a read, and is
    /// admitted again then): its token goes back.
    pub fn lookup_not_done(&mut self, taken: Taken<IpAddr>) {
        self.lookups.give_back(taken);
    }

    /// A REGISTER from `peer`: takes a token from the address's bucket, or
    /// says how long to wait.
    pub fn admit_register(&mut self, peer: IpAddr, now: Millis) -> Result<RegisterCharge, u64> {
        let rate = self.settings.register_rate();
        let addr = address_key(peer);
        let (bucket, overflow) = match self.registers.entry(addr, now) {
            Some(state) => (&mut state.0, false),
            None => (&mut self.register_overflow, true),
        };
        if let Some(wait) = bucket.wait(rate, now) {
            return Err(wait);
        }
        bucket.take(rate, now);
        Ok(RegisterCharge { addr, overflow })
    }

    /// The REGISTER did not create an account: its token goes back.
    pub fn register_failed(&mut self, charge: RegisterCharge) {
        let rate = self.settings.register_rate();
        if charge.overflow {
            self.register_overflow.give_back(rate);
        } else if let Some(state) = self.registers.get_mut(&charge.addr) {
            state.0.give_back(rate);
        }
    }

    /// Forgets a step of idle entries in each table; returns whether more
    /// may be due soon (a table was not walked round).
    pub fn prune(&mut self, now: Millis) -> bool {
        let names = self.names.prune(now, PRUNE_STEP);
        let addresses = self.addresses.prune(now, PRUNE_STEP);
        let registers = self.registers.prune(now, PRUNE_STEP);
        let lookups = self.lookups.prune(now);
        let new_addresses = self.new_addresses.prune(now);
        !(names && addresses && registers && lookups && new_addresses)
    }

    /// Entries held: (usernames, login addresses, register addresses).
    pub fn len(&self) -> (usize, usize, usize) {
        (self.names.len(), self.addresses.len(), self.registers.len())
    }
}
