//! Fair shares of sending: the per-account send rate (`--sends-per-second`
//! with `--send-burst`) and fan-out rate (`--new-recipients-per-hour`),
//! checked by SEND before it reserves room in a mailbox. All of an
//! account's connections and doors share its buckets; on PostgreSQL each
//! node keeps its own (an account connected to two nodes may send twice
//! the rate).
//!
//! "Existing conversation", with no store read: an account's partners are
//! the users it sent a message to, or that sent one to it, through this
//! node within the last hour ([`PARTNER_MS`]). A SEND to a partner (or to
//! oneself) takes no fan-out token; a SEND to anyone else is a new
//! recipient and takes one. Each account remembers at most
//! [`limits::PARTNERS_PER_ACCOUNT`] partners; past that a new one is not
//! remembered (a later reply to it counts as new). After a restart, the
//! record starts empty.
//!
//! A check is a comparison of counters, with no hash on the usual path:
//! the sender's entry is found at the slot where it was last found (a
//! table of [`HINTS`] slots indexed by account id, checked against the
//! entry's key), a run of SENDs to one recipient skips the partner
//! look-up, and the send bucket (`logins/bucket.rs`, refilled lazily from
//! the loop's clock) is checked and taken in one step, given back if the
//! SEND is refused after all (a full mailbox). The table of
//! accounts is a [`ThrottleTable`] of at most `--throttle-entries`, whose
//! idle entries (buckets full, no partner this hour) are forgotten a step
//! at a time; while it is full of busy accounts a new sender passes
//! unchecked rather than be refused for others' traffic.

use super::logins::bucket::{Bucket, Rate};
use super::logins::throttle_table::{Idle, ThrottleTable, PRUNE_STEP};
use crate::config::limits;
use crate::error::Failure;
use crate::idhash::{IdHasher, IdMap};
use crate::{Millis, UserId};
use std::hash::BuildHasherDefault;

/// How long a partner stays known after the last message between them.
pub const PARTNER_MS: Millis = 60 * 60 * 1000;
/// A partner's time is written again only when older than this, so a
/// conversation's SENDs touch only the sender's entry.
const REFRESH_MS: Millis = 60 * 1000;
/// Slots in the table of where each sender's share was last found (a
/// power of two; account ids are dense, so active senders rarely share
/// one).
const HINTS: usize = 256;

/// One account's share.
#[derive(Default)]
pub struct Share {
    sends: Bucket,
    new_recipients: Bucket,
    /// Partner → when the last message between them went through.
    partners: IdMap<UserId, Millis>,
    /// The latest time in `partners`.
    last_partner: Millis,
    /// When expired partners were last dropped (a full record is pruned
    /// at most once per [`REFRESH_MS`]).
    pruned_at: Millis,
    /// The last recipient found in `partners` and its time there: a run of
    /// SENDs to one person (the usual shape) skips the partner look-up.
    recent: (UserId, Millis),
}

impl Idle for Share {
    fn idle(&self, now: Millis) -> bool {
        self.sends.is_full(now)
            && self.new_recipients.is_full(now)
            && (self.partners.is_empty() || now >= self.last_partner + PARTNER_MS)
    }
}

impl Share {
    fn knows(&mut self, partner: UserId, now: Millis) -> Option<Millis> {
        let (recent, at) = self.recent;
        if recent == partner && at != 0 && now < at + REFRESH_MS {
            return Some(at);
        }
        let at = self
            .partners
            .get(&partner)
            .copied()
            .filter(|&at| now < at + PARTNER_MS)?;
        self.recent = (partner, at);
        Some(at)
    }

    /// Remembers `partner` at `now`, if there is room.
    fn remember(&mut self, partner: UserId, now: Millis) {
        let full = self.partners.len() >= limits::PARTNERS_PER_ACCOUNT;
        if full && !self.partners.contains_key(&partner) {
            if now < self.pruned_at + REFRESH_MS {
                return;
            }
            self.pruned_at = now;
            self.partners.retain(|_, at| now < *at + PARTNER_MS);
            if self.partners.len() >= limits::PARTNERS_PER_ACCOUNT {
                return;
            }
        }
        self.partners.insert(partner, now);
        self.last_partner = self.last_partner.max(now);
        self.recent = (partner, now);
    }
}

/// Which limit refused a SEND.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `--sends-per-second`, with the milliseconds until a token is back.
    Rate(u64),
    /// `--new-recipients-per-hour`, likewise.
    NewRecipient(u64),
}

/// A SEND that passed the check: its send token is taken; what else it
/// takes once accepted ([`Shares::accepted`]), and how to give the token
/// back if it is refused after all ([`Shares::give_back`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// The recipient is new: a fan-out token is taken.
    new_recipient: bool,
    /// The pair's record is written (new, or older than [`REFRESH_MS`]).
    remember: bool,
    /// Where the sender's share is in the table (`usize::MAX`: none).
    slot: usize,
    /// The send bucket before its token was taken.
    before: Bucket,
}

impl Pass {
    /// Nothing taken, nothing to take.
    fn free() -> Pass {
        Pass {
            new_recipient: false,
            remember: false,
            slot: usize::MAX,
            before: Bucket::default(),
        }
    }
}

pub struct Shares {
    send_rate: Option<Rate>,
    fan_out: Option<Rate>,
    accounts: ThrottleTable<UserId, Share, BuildHasherDefault<IdHasher>>,
    /// Where each sender's share was last found: (account, slot), at the
    /// account id modulo [`HINTS`].
    hints: Box<[(UserId, usize); HINTS]>,
    /// SENDs let through unchecked because the table was full.
    pub untracked: u64,
}

impl Shares {
    pub fn new(settings: &crate::config::Shares, entries: usize) -> Shares {
        let s = settings;
        Shares {
            send_rate: (s.sends_per_second > 0)
                .then(|| Rate::per(s.sends_per_second, 1000, s.send_burst)),
            fan_out: (s.new_recipients_per_hour > 0).then(|| {
                Rate::per(
                    s.new_recipients_per_hour,
                    PARTNER_MS,
                    s.new_recipients_per_hour,
                )
            }),
            accounts: ThrottleTable::new(entries),
            hints: Box::new([(UserId::MAX, 0); HINTS]),
            untracked: 0,
        }
    }

    /// Whether `from` may send to `to` now. If so its send token is taken:
    /// finish with [`Shares::accepted`] or [`Shares::give_back`].
    #[inline]
    pub fn check(&mut self, from: UserId, to: UserId, now: Millis) -> Result<Pass, Refused> {
        if self.send_rate.is_none() && self.fan_out.is_none() {
            return Ok(Pass::free());
        }
        let hint = &mut self.hints[(from as usize) % HINTS];
        let slot = if hint.0 == from && self.accounts.holds(hint.1, &from) {
            hint.1
        } else {
            let Some((slot, _)) = self.accounts.entry_slot(from, now) else {
                self.untracked += 1;
                return Ok(Pass::free());
            };
            *hint = (from, slot);
            slot
        };
        let share = self.accounts.at_index(slot);
        let before = share.sends;
        if let Some(rate) = self.send_rate {
            share.sends = before.after_take(rate, now).map_err(Refused::Rate)?;
        }
        let pass = Pass {
            new_recipient: false,
            remember: false,
            slot,
            before,
        };
        let Some(rate) = self.fan_out else {
            return Ok(pass);
        };
        if from == to {
            return Ok(pass);
        }
        match share.knows(to, now) {
            Some(at) => Ok(Pass {
                remember: now >= at + REFRESH_MS,
                ..pass
            }),
            None => match share.new_recipients.wait(rate, now) {
                Some(wait) => {
                    share.sends = before;
                    Err(Refused::NewRecipient(wait))
                }
                None => Ok(Pass {
                    new_recipient: true,
                    remember: true,
                    ..pass
                }),
            },
        }
    }

    /// The SEND that [`Shares::check`] passed is accepted: a new
    /// recipient's fan-out token is taken and the pair remembered on both
    /// sides.
    #[inline]
    pub fn accepted(&mut self, pass: Pass, from: UserId, to: UserId, now: Millis) {
        if !pass.remember {
            return;
        }
        let Some(share) = self.accounts.at_mut(pass.slot, &from) else {
            return;
        };
        if let (true, Some(rate)) = (pass.new_recipient, self.fan_out) {
            share.new_recipients.take(rate, now);
        }
        share.remember(to, now);
        if let Some(theirs) = self.accounts.entry(to, now) {
            theirs.remember(from, now);
        }
    }

    /// The SEND that [`Shares::check`] passed was refused after all: its
    /// send token is back, as if it had not been checked.
    pub fn give_back(&mut self, pass: Pass, from: UserId) {
        if pass.slot == usize::MAX {
            return;
        }
        if let Some(share) = self.accounts.at_mut(pass.slot, &from) {
            share.sends = pass.before;
        }
    }

    /// Forgets a step of idle accounts.
    pub fn prune(&mut self, now: Millis) {
        self.accounts.prune(now, PRUNE_STEP);
    }

    /// Accounts remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.accounts.len()
    }
}

impl Refused {
    /// The reply, naming the flag (so it is counted and logged by it).
    pub fn failure(self, settings: &crate::config::Shares) -> Failure {
        match self {
            Refused::Rate(wait) => Failure::retry_after(
                format!(
                    "more than {} SENDs a second ({} at once) from this account \
                     (--sends-per-second); try again in {wait} ms",
                    settings.sends_per_second, settings.send_burst
                ),
                wait,
            ),
            Refused::NewRecipient(wait) => Failure::retry_after(
                format!(
                    "this account has written to {} new users this hour, the limit \
                     (--new-recipients-per-hour); replies to users it is in \
                     conversation with still go through; a new one in {wait} ms",
                    settings.new_recipients_per_hour
                ),
                wait,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;

    fn shares(per_second: u64, burst: u64, per_hour: u64) -> Shares {
        let settings = crate::config::Shares {
            sends_per_second: per_second,
            send_burst: burst,
            new_recipients_per_hour: per_hour,
            read_bytes_per_second: 0,
            read_burst: 65536,
            connections_per_address_per_second: 0,
            connections_per_address_burst: 1,
            connection_storm_cuts: 0,
            connection_storm_block_seconds: 1,
        };
        Shares::new(&settings, 1000)
    }

    fn send(s: &mut Shares, from: UserId, to: UserId, now: Millis) -> Result<(), Refused> {
        let pass = s.check(from, to, now)?;
        s.accepted(pass, from, to, now);
        Ok(())
    }

    #[test]
    fn a_run_to_one_partner_counts_as_before() {
        let mut s = shares(1000, 1000, 2);
        send(&mut s, 1, 2, T0).unwrap();
        for k in 1..50 {
            send(&mut s, 1, 2, T0 + k).unwrap(); // the recent partner
        }
        send(&mut s, 1, 3, T0 + 60).unwrap();
        assert!(
            matches!(send(&mut s, 1, 4, T0 + 61), Err(Refused::NewRecipient(_))),
            "two new recipients an hour, however the look-ups went"
        );
        send(&mut s, 1, 2, T0 + 62).unwrap(); // still a partner
    }

    #[test]
    fn a_burst_then_the_rate_and_a_refusal_takes_nothing() {
        let mut s = shares(10, 3, 0);
        for _ in 0..3 {
            send(&mut s, 1, 2, T0).unwrap();
        }
        assert_eq!(send(&mut s, 1, 2, T0), Err(Refused::Rate(100)));
        assert_eq!(send(&mut s, 1, 2, T0 + 50), Err(Refused::Rate(50)));
        assert!(
            send(&mut s, 3, 2, T0).is_ok(),
            "another account has its own"
        );
        send(&mut s, 1, 2, T0 + 100).unwrap();
        assert!(send(&mut s, 1, 2, T0 + 100).is_err());
        // Checks that pass but are refused after all (a full mailbox) cost
        // nothing once given back.
        for _ in 0..10 {
            let pass = s.check(1, 2, T0 + 200).unwrap();
            s.give_back(pass, 1);
        }
        send(&mut s, 1, 2, T0 + 200).unwrap();
    }

    #[test]
    fn new_recipients_are_counted_and_partners_are_not() {
        let mut s = shares(0, 1, 2);
        send(&mut s, 1, 10, T0).unwrap();
        send(&mut s, 1, 11, T0).unwrap();
        let Err(Refused::NewRecipient(wait)) = send(&mut s, 1, 12, T0) else {
            panic!("the third new recipient in an hour is refused");
        };
        assert_eq!(wait, 30 * 60 * 1000, "two an hour: one per 30 minutes");
        // Existing conversations go on: again to 10, to oneself, and to
        // someone who wrote first.
        send(&mut s, 1, 10, T0 + 1).unwrap();
        send(&mut s, 1, 1, T0 + 1).unwrap();
        send(&mut s, 12, 1, T0 + 2).unwrap();
        send(&mut s, 1, 12, T0 + 3).unwrap();
        // 10 may answer without spending its own budget.
        send(&mut s, 10, 1, T0 + 4).unwrap();
        send(&mut s, 10, 20, T0 + 4).unwrap();
        send(&mut s, 10, 21, T0 + 4).unwrap();
        assert!(send(&mut s, 10, 22, T0 + 4).is_err());
        // An hour later, partners are forgotten and the budget is back.
        let later = T0 + PARTNER_MS + 10;
        send(&mut s, 1, 30, later).unwrap();
        send(&mut s, 1, 31, later).unwrap();
        assert!(send(&mut s, 1, 10, later).is_err(), "10 is new again");
    }

    #[test]
    fn idle_accounts_are_forgotten_and_off_costs_nothing() {
        let mut s = shares(10, 10, 5);
        send(&mut s, 1, 2, T0).unwrap();
        assert_eq!(s.len(), 2, "the sender and the recipient who may reply");
        s.prune(T0 + PARTNER_MS);
        assert_eq!(s.len(), 0);
        let mut off = shares(0, 1, 0);
        for n in 0..1000 {
            send(&mut off, 1, n, T0).unwrap();
        }
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn a_full_partner_record_keeps_its_bound() {
        let mut share = Share::default();
        for n in 0..(limits::PARTNERS_PER_ACCOUNT as UserId + 10) {
            share.remember(n, T0);
        }
        assert_eq!(share.partners.len(), limits::PARTNERS_PER_ACCOUNT);
        // Once the old ones expire, a prune makes room.
        share.remember(1_000_000, T0 + PARTNER_MS);
        assert_eq!(share.partners.len(), 1);
    }
}
