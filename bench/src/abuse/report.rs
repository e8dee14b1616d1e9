//! The `abuse` scenario's report: the table of what each attack cost,
//! the genuine logins' table, each attack's notes, and the verdict
//! against the targets (bystander PING p99 within 10x of idle, no
//! lock-out, genuine logins served).

use super::{LoginSample, Row, SETTLE};
use crate::login::PingStats;
use crate::{print_table, thousands};
use std::time::Duration;

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.0}", k as f64 / 1024.0))
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1e3)
}

fn served(r: &Result<(), String>) -> String {
    match r {
        Ok(()) => "yes".into(),
        Err(e) => format!("no ({e})"),
    }
}

/// The genuine LOGINs' p50 and max, and how many failed.
pub(super) fn login_summary(samples: &[LoginSample]) -> Option<(Duration, Duration, Vec<String>)> {
    if samples.is_empty() {
        return None;
    }
    let mut took: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    took.sort_unstable();
    let p50 = took[(took.len() - 1) / 2];
    let max = *took.last().expect("not empty");
    let failed = samples
        .iter()
        .filter_map(|s| s.result.as_ref().err().cloned())
        .collect();
    Some((p50, max, failed))
}

/// Which of the targets an attack missed (RSS is left to the
/// reader: the budgets it is held to are the server's flags).
fn verdict(row: &Row) -> String {
    let mut missed = Vec::new();
    if !row.server_alive {
        missed.push("server died".to_string());
    }
    match (&row.idle, &row.during) {
        (Some(i), Some(d)) if d.p99_us > 10 * i.p99_us.max(1) => missed.push(format!(
            "PING p99 {:.0}x idle",
            d.p99_us as f64 / i.p99_us.max(1) as f64
        )),
        (_, None) => missed.push("no PING answered".into()),
        _ => {}
    }
    if row.bystander_lost.is_some() {
        missed.push("bystander lost".into());
    }
    if row.new_after.is_err() {
        missed.push("locked out".into());
    }
    if let Some((_, max, failed)) = row
        .outcome
        .as_ref()
        .ok()
        .and_then(|o| login_summary(&o.logins))
    {
        if max >= Duration::from_secs(2) {
            missed.push(format!("LOGIN took {:.1} s", max.as_secs_f64()));
        }
        if !failed.is_empty() {
            missed.push(format!("{} of the genuine logins gave up", failed.len()));
        }
    }
    if missed.is_empty() {
        "met".into()
    } else {
        missed.join("; ")
    }
}

pub(super) fn report(rows: &[Row]) {
    println!();
    println!(
        "PING percentiles count the PINGs that a late reply kept the bystander from \
         sending (one every 2 ms), so a stall weighs as long as it lasts."
    );
    println!();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let (ops, errors) = match &r.outcome {
                Ok(o) => (o.ops.clone(), o.errors.summary()),
                Err(e) => (format!("failed: {e}"), "-".into()),
            };
            let ping = |s: &Option<PingStats>| match s {
                Some(s) => format!("{} / {}", ms(s.p50_us), ms(s.p99_us)),
                None => "-".into(),
            };
            let ratio = match (&r.idle, &r.during) {
                (Some(i), Some(d)) => {
                    format!("{:.1}x", d.p99_us as f64 / i.p99_us.max(1) as f64)
                }
                _ => "-".into(),
            };
            let fds = |f: Option<usize>| f.map_or("n/a".into(), |f| thousands(f as f64));
            vec![
                r.attack.name.to_string(),
                format!(
                    "{}{}",
                    r.mode.name(),
                    r.open_files
                        .map_or(String::new(), |n| format!(", {n} files"))
                ),
                ops,
                errors,
                format!("{} / {} / {}", mib(r.rss[0]), mib(r.rss[1]), mib(r.rss[2])),
                format!("{} / {} / {}", fds(r.fds[0]), fds(r.fds[1]), fds(r.fds[2])),
                ping(&r.idle),
                ping(&r.during),
                ratio,
                r.during.as_ref().map_or("-".into(), |d| ms(d.max_us)),
                format!(
                    "{} / {}",
                    if r.new_at_end.is_ok() { "yes" } else { "no" },
                    if r.new_after.is_ok() { "yes" } else { "no" }
                ),
                verdict(r),
            ]
        })
        .collect();
    print_table(
        &[
            "attack",
            "server",
            "operations",
            "errors by code",
            "RSS MiB before / peak / after",
            "server fds before / end / after",
            "PING idle p50 / p99 ms",
            "PING during p50 / p99 ms",
            "p99 during/idle",
            "PING max ms",
            "new client end / after",
            "targets",
        ],
        &table,
    );

    let logins: Vec<Vec<String>> = rows
        .iter()
        .filter_map(|r| {
            let o = r.outcome.as_ref().ok()?;
            let (p50, max, failed) = login_summary(&o.logins)?;
            Some(vec![
                format!("{} ({})", r.attack.name, r.mode.name()),
                o.logins.len().to_string(),
                format!("{:.0}", p50.as_secs_f64() * 1e3),
                format!("{:.0}", max.as_secs_f64() * 1e3),
                thousands(o.logins.iter().map(|s| s.refusals as f64).sum::<f64>()),
                if failed.is_empty() {
                    "none".into()
                } else {
                    failed.join(", ")
                },
            ])
        })
        .collect();
    if !logins.is_empty() {
        println!();
        print_table(
            &[
                "genuine login during the flood",
                "users",
                "p50 ms",
                "max ms",
                "rate_limited replies first",
                "gave up",
            ],
            &logins,
        );
    }

    println!();
    for r in rows {
        println!(
            "- {} ({}): {}; ran {:.1} s.",
            r.attack.name,
            r.mode.name(),
            r.attack.what,
            r.seconds
        );
        let mut notes: Vec<String> = match &r.outcome {
            Ok(o) => o.notes.clone(),
            Err(e) => vec![format!("the attack failed: {e}")],
        };
        notes.extend(r.halted.clone());
        notes.extend(r.bystander_lost.clone());
        if let Err(e) = &r.new_at_end {
            notes.push(format!(
                "new client at the end of the attack: {}",
                served(&Err(e.clone()))
            ));
        }
        if let Err(e) = &r.new_after {
            notes.push(format!(
                "new client {} s after the attacker left: {}",
                SETTLE.as_secs(),
                served(&Err(e.clone()))
            ));
        }
        if !r.server_alive {
            notes.push("the server exited".into());
        }
        match &r.restart {
            Some(Ok((took, rss))) => notes.push(format!(
                "restarted on the same data: listening after {:.1} s, RSS {} MiB a second later",
                took.as_secs_f64(),
                mib(*rss)
            )),
            Some(Err(e)) => notes.push(format!("restart on the same data failed: {e}")),
            None => {}
        }
        for n in notes {
            println!("  - {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_summary_takes_median_and_max() {
        let s = |ms: u64, ok: bool| LoginSample {
            took: Duration::from_millis(ms),
            refusals: 0,
            result: if ok {
                Ok(())
            } else {
                Err("rate_limited".into())
            },
        };
        let (p50, max, failed) = login_summary(&[s(30, true), s(10, true), s(900, false)]).unwrap();
        assert_eq!(p50, Duration::from_millis(30));
        assert_eq!(max, Duration::from_millis(900));
        assert_eq!(failed, ["rate_limited"]);
        assert!(login_summary(&[]).is_none());
    }
}
