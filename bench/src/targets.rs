//! The "against the targets" table that `compare` ends with: one [`Row`]
//! per figure (goTalk, its peer, the ratio, the target and whether it is
//! met), printed as a table and drawn by [`crate::chart`]. A figure
//! measured elsewhere joins with one call:
//!
//! ```ignore
//! rows.push(Row::new(
//!     "memory per online user (2,000 users, one idle connection each)",
//!     Unit::Bytes, Better::Lower,
//!     gotalk_bytes, ("Mosquitto, per connection", mosquitto_bytes),
//!     Target::Value(512.0),
//! ));
//! ```

use crate::{print_table, thousands};

/// What a figure counts, for its labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    PerSecond,
    Micros,
    /// For the memory rows (per online user, per idle TLS connection).
    Bytes,
}

/// Which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// What the figure should reach.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// goTalk / peer at least (Higher) or at most (Lower) this.
    Ratio(f64),
    /// goTalk's own figure at least or at most this (in its unit): the
    /// memory rows' 512 B and 2 KB.
    Value(f64),
}

/// One figure: goTalk against its peer. A side that was not measured
/// holds why (`not installed`, the error).
#[derive(Clone, Debug)]
pub struct Row {
    pub figure: String,
    pub unit: Unit,
    pub better: Better,
    pub gotalk: Result<f64, String>,
    pub peer_name: String,
    pub peer: Result<f64, String>,
    pub target: Target,
}

impl Row {
    pub fn new(
        figure: &str,
        unit: Unit,
        better: Better,
        gotalk: Result<f64, String>,
        (peer_name, peer): (&str, Result<f64, String>),
        target: Target,
    ) -> Row {
        Row {
            figure: figure.into(),
            unit,
            better,
            gotalk,
            peer_name: peer_name.into(),
            peer,
            target,
        }
    }

    /// goTalk / peer, when both were measured.
    pub fn ratio(&self) -> Option<f64> {
        match (&self.gotalk, &self.peer) {
            (Ok(g), Ok(p)) if *p > 0.0 => Some(g / p),
            _ => None,
        }
    }

    /// Whether the target is met, when the figures say.
    pub fn met(&self) -> Option<bool> {
        let (have, want) = match self.target {
            Target::Ratio(r) => (self.ratio()?, r),
            Target::Value(v) => (*self.gotalk.as_ref().ok()?, v),
        };
        Some(match self.better {
            Better::Higher => have >= want,
            Better::Lower => have <= want,
        })
    }

    /// The bars to draw, in units of the reference (the peer when
    /// measured, else the target value): goTalk, the peer if measured,
    /// the target line, and what the reference is.
    pub fn bars(&self) -> Option<Bars> {
        let g = *self.gotalk.as_ref().ok()?;
        match (&self.peer, self.target) {
            (Ok(p), t) if *p > 0.0 => Some(Bars {
                gotalk: g / p,
                peer: Some(1.0),
                target: match t {
                    Target::Ratio(r) => r,
                    Target::Value(v) => v / p,
                },
                per: self.peer_name.clone(),
            }),
            (_, Target::Value(v)) if v > 0.0 => Some(Bars {
                gotalk: g / v,
                peer: None,
                target: 1.0,
                per: "the target".into(),
            }),
            _ => None,
        }
    }

    /// The target as text: `≥ 1.0×` or `≤ 512 B`.
    pub fn target_text(&self) -> String {
        let sign = match self.better {
            Better::Higher => "≥",
            Better::Lower => "≤",
        };
        match self.target {
            Target::Ratio(r) => format!("{sign} {r:.1}×"),
            Target::Value(v) => format!("{sign} {}", value_text(v, self.unit)),
        }
    }
}

/// A row's bars in units of `per`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bars {
    pub gotalk: f64,
    pub peer: Option<f64>,
    pub target: f64,
    pub per: String,
}

/// A figure with its unit: `1.36 M msgs/s`, `755 k msgs/s`, `254 µs`,
/// `973 B`, `8.4 KB`.
pub fn value_text(v: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSecond if v >= 1e6 => format!("{:.2} M msgs/s", v / 1e6),
        Unit::PerSecond if v >= 1e3 => format!("{:.0} k msgs/s", v / 1e3),
        Unit::PerSecond => format!("{v:.0} msgs/s"),
        Unit::Micros => format!("{} µs", thousands(v)),
        Unit::Bytes if v >= 1e4 => format!("{:.0} KB", v / 1e3),
        Unit::Bytes if v >= 2e3 => format!("{:.1} KB", v / 1e3),
        Unit::Bytes => format!("{v:.0} B"),
    }
}

fn side_text(side: &Result<f64, String>, unit: Unit) -> String {
    match side {
        Ok(v) => value_text(*v, unit),
        Err(e) => e.clone(),
    }
}

/// The rows as issue 22's table: figure, goTalk, peer, ratio, target, met.
pub fn print_rows(rows: &[Row]) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.figure.clone(),
                side_text(&r.gotalk, r.unit),
                format!("{} {}", r.peer_name, side_text(&r.peer, r.unit)),
                r.ratio().map_or("—".into(), |x| format!("{x:.2}×")),
                r.target_text(),
                match r.met() {
                    Some(true) => "met".into(),
                    Some(false) => "missed".into(),
                    None => "—".into(),
                },
            ]
        })
        .collect();
    print_table(
        &["figure", "goTalk", "peer", "ratio", "target", "met"],
        &table,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_targets_and_bars_follow_the_better_side() {
        let relay = Row::new(
            "relay",
            Unit::PerSecond,
            Better::Higher,
            Ok(1.36e6),
            ("NATS", Ok(1.95e6)),
            Target::Ratio(1.0),
        );
        assert!((relay.ratio().unwrap() - 0.697).abs() < 0.001);
        assert_eq!(relay.met(), Some(false));
        assert_eq!(relay.target_text(), "≥ 1.0×");
        let memory = Row::new(
            "memory",
            Unit::Bytes,
            Better::Lower,
            Ok(400.0),
            ("Mosquitto", Ok(800.0)),
            Target::Value(512.0),
        );
        assert_eq!(memory.met(), Some(true));
        let bars = memory.bars().unwrap();
        assert_eq!(
            (bars.gotalk, bars.peer, bars.target),
            (0.5, Some(1.0), 0.64)
        );
        let alone = Row::new(
            "tls",
            Unit::Bytes,
            Better::Lower,
            Ok(8400.0),
            ("Centrifugo", Err("quoted, ~30 KB".into())),
            Target::Value(2000.0),
        );
        assert_eq!(alone.ratio(), None);
        assert_eq!(alone.bars().unwrap().gotalk, 4.2);
        assert_eq!(alone.target_text(), "≤ 2.0 KB");
        assert_eq!(value_text(1_360_000.0, Unit::PerSecond), "1.36 M msgs/s");
        assert_eq!(value_text(755_000.0, Unit::PerSecond), "755 k msgs/s");
    }
}
