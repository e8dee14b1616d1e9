//! `compare --chart PATH`: the "against the targets" rows as one
//! self-contained SVG (no scripts, no fonts to fetch, a white background),
//! written by hand so it needs no crate and renders the same on GitHub as
//! in a browser. One group of horizontal bars per row: goTalk and its peer
//! as ratios of the peer (the peer is 1.0×; without a measured peer,
//! goTalk as a ratio of its target value), a dashed red line at the target
//! and the figures themselves as text beside them.

use crate::targets::{value_text, Better, Row};
use std::fmt::Write;

const WIDTH: f64 = 1000.0;
/// Where the bars start and end.
const PLOT_X: f64 = 410.0;
const PLOT_W: f64 = 440.0;
const TOP: f64 = 78.0;
const GROUP_H: f64 = 70.0;
const GOTALK: &str = "#2f6fdf";
const PEER: &str = "#9a9a9a";
const TARGET: &str = "#d62728";

/// Text safe inside an SVG element or attribute.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The axis end: 2× at least, else the largest bar or target plus room,
/// rounded up to a half.
fn axis_max(rows: &[Row]) -> f64 {
    let largest = rows
        .iter()
        .filter_map(Row::bars)
        .flat_map(|b| [b.gotalk, b.target, b.peer.unwrap_or(0.0)])
        .fold(2.0f64, f64::max);
    ((largest * 1.1) * 2.0).ceil() / 2.0
}

/// The chart of `rows`, titled `title`.
pub fn svg(title: &str, rows: &[Row]) -> String {
    let height = TOP + GROUP_H * rows.len() as f64 + 30.0;
    let max = axis_max(rows);
    let x = |v: f64| PLOT_X + PLOT_W * v.clamp(0.0, max) / max;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r##"<text x="16" y="26" font-size="16" font-weight="bold" fill="#222">{}</text>"##,
        escape(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="16" y="46" fill="#555">Bars: <tspan fill="{GOTALK}">goTalk</tspan> and <tspan fill="{PEER}">its peer</tspan> as a ratio of the peer (1.0×); <tspan fill="{TARGET}">dashed line: the target</tspan>.</text>"##
    );
    // The axis: a grid line and label every half (every 1× past 4×).
    let step = if max > 4.0 { 1.0 } else { 0.5 };
    let mut tick = 0.0;
    while tick <= max + 1e-9 {
        let tx = x(tick);
        let _ = writeln!(
            s,
            r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#777">{tick:.1}×</text>"##,
            TOP - 10.0,
            height - 24.0,
            TOP - 14.0
        );
        tick += step;
    }
    for (i, row) in rows.iter().enumerate() {
        group(&mut s, i, row, TOP + GROUP_H * i as f64, &x);
    }
    s.push_str("</svg>\n");
    s
}

/// One row's group of bars and labels, its top at `y`.
fn group(s: &mut String, i: usize, row: &Row, y: f64, x: &dyn Fn(f64) -> f64) {
    let _ = writeln!(s, r#"<g class="row" id="row-{i}">"#);
    let better = match row.better {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    };
    // An error is cut short: the chart has one line for both sides.
    let side = |v: &Result<f64, String>| match v {
        Ok(v) => value_text(*v, row.unit),
        Err(e) if e.chars().count() > 32 => format!("{}…", e.chars().take(31).collect::<String>()),
        Err(e) => e.clone(),
    };
    let _ = writeln!(
        s,
        r##"<text x="16" y="{:.1}" font-weight="bold" fill="#222">{}</text><text x="16" y="{:.1}" fill="#555">goTalk {} · {} {}</text><text x="16" y="{:.1}" fill="#888">{better}, target {}</text>"##,
        y + 18.0,
        escape(&row.figure),
        y + 35.0,
        escape(&side(&row.gotalk)),
        escape(&row.peer_name),
        escape(&side(&row.peer)),
        y + 51.0,
        escape(&row.target_text()),
    );
    let Some(bars) = row.bars() else {
        let _ = writeln!(
            s,
            r##"<text x="{PLOT_X}" y="{:.1}" fill="#888">not measured</text></g>"##,
            y + 30.0
        );
        return;
    };
    let verdict = match row.met() {
        Some(true) => "met",
        Some(false) => "missed",
        None => "",
    };
    let _ = writeln!(
        s,
        r##"<rect x="{PLOT_X}" y="{:.1}" width="{:.1}" height="18" fill="{GOTALK}"/><text x="{:.1}" y="{:.1}" fill="#222">{:.2}× {verdict}</text>"##,
        y + 8.0,
        x(bars.gotalk) - PLOT_X,
        x(bars.gotalk) + 6.0,
        y + 21.0,
        bars.gotalk,
    );
    if let Some(peer) = bars.peer {
        let _ = writeln!(
            s,
            r##"<rect x="{PLOT_X}" y="{:.1}" width="{:.1}" height="18" fill="{PEER}"/><text x="{:.1}" y="{:.1}" fill="#555">{} {peer:.1}×</text>"##,
            y + 30.0,
            x(peer) - PLOT_X,
            x(peer) + 6.0,
            y + 43.0,
            escape(&row.peer_name),
        );
    } else {
        let _ = writeln!(
            s,
            r##"<text x="{PLOT_X}" y="{:.1}" fill="#888">as a ratio of {}</text>"##,
            y + 43.0,
            escape(&bars.per)
        );
    }
    let tx = x(bars.target);
    let _ = writeln!(
        s,
        r#"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}" stroke="{TARGET}" stroke-width="2" stroke-dasharray="4 3"/></g>"#,
        y + 3.0,
        y + 53.0
    );
}

/// Writes the chart to `path`.
pub fn write(path: &std::path::Path, title: &str, rows: &[Row]) -> Result<(), String> {
    std::fs::write(path, svg(title, rows)).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{Target, Unit};

    /// Checks that every element is closed in order and attributes are
    /// quoted: a small well-formedness test without an XML crate.
    fn well_formed(doc: &str) -> Result<(), String> {
        let mut open: Vec<&str> = Vec::new();
        let mut rest = doc;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            if text.contains('>') || (text.contains('&') && !text.contains(';')) {
                return Err(format!("stray markup in text {text:?}"));
            }
            let end = rest[start..].find('>').ok_or("unclosed tag")? + start;
            let tag = &rest[start + 1..end];
            if !tag.matches('"').count().is_multiple_of(2) || tag.contains('<') {
                return Err(format!("bad tag <{tag}>"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                if open.pop() != Some(name) {
                    return Err(format!("</{name}> closes the wrong element"));
                }
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().ok_or("empty tag")?);
            }
            rest = &rest[end + 1..];
        }
        if open.is_empty() {
            Ok(())
        } else {
            Err(format!("unclosed: {open:?}"))
        }
    }

    fn rows() -> Vec<Row> {
        vec![
            Row::new(
                "relay, --memory",
                Unit::PerSecond,
                Better::Higher,
                Ok(1_360_000.0),
                ("NATS core", Ok(1_950_000.0)),
                Target::Ratio(1.0),
            ),
            Row::new(
                "p99 at a fixed 10 k msgs/s",
                Unit::Micros,
                Better::Lower,
                Ok(254.0),
                ("Redis <pub/sub> & co", Ok(244.0)),
                Target::Ratio(1.0),
            ),
            Row::new(
                "memory per idle TLS connection",
                Unit::Bytes,
                Better::Lower,
                Ok(8400.0),
                ("Centrifugo", Err("not installed".into())),
                Target::Value(2000.0),
            ),
            Row::new(
                "relay, durable",
                Unit::PerSecond,
                Better::Higher,
                Err("gotalk failed".into()),
                ("Redis", Err("not installed".into())),
                Target::Ratio(1.0),
            ),
        ]
    }

    #[test]
    fn the_chart_is_well_formed_with_one_group_per_row_and_its_numbers() {
        let doc = svg("goTalk against its peers", &rows());
        well_formed(&doc).unwrap();
        assert!(doc.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(doc.matches("<g class=\"row\"").count(), 4);
        for text in [
            "0.70× missed",
            "1.36 M msgs/s",
            "1.95 M msgs/s",
            "1.04× missed",
            "254 µs",
            "Redis &lt;pub/sub&gt; &amp; co",
            "4.20× missed",
            "as a ratio of the target",
            "≤ 2.0 KB",
            "not measured",
            "gotalk failed",
        ] {
            assert!(doc.contains(text), "{text} missing from the chart");
        }
        // The axis reaches past the largest bar (4.2×).
        assert!(doc.contains(">5.0×<"));
        assert!(well_formed("<svg><g></svg></g>").is_err());
        assert!(well_formed("<svg><text>a > b</text></svg>").is_err());
    }
}
