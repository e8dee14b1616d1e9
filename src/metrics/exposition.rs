//! The Prometheus text exposition format (version 0.0.4), written by hand:
//! a few families of counters, gauges and histograms need no library.
//! `# HELP` and `# TYPE` once per family, then its samples.

use crate::histogram::Snapshot;
use std::fmt::Write;

/// One exposition being written.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

/// Label pairs of one sample.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

impl Exposition {
    fn head(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: Labels<'_>, value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// A family of one kind (`counter` or `gauge`) with labelled samples.
    pub fn family(&mut self, name: &str, help: &str, kind: &str, samples: &[(Labels<'_>, f64)]) {
        self.head(name, help, kind);
        for (labels, value) in samples {
            self.sample(name, labels, *value);
        }
    }

    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, "counter", &[(&[], value)]);
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, "gauge", &[(&[], value)]);
    }

    pub fn histogram(&mut self, name: &str, help: &str, snapshot: &Snapshot) {
        self.head(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        for &(bound, count) in &snapshot.buckets {
            let le = if bound.is_infinite() {
                "+Inf".to_string()
            } else {
                number(bound)
            };
            self.sample(&bucket, &[("le", &le)], count as f64);
        }
        self.sample(&format!("{name}_sum"), &[], snapshot.sum);
        self.sample(&format!("{name}_count"), &[], snapshot.count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::Histogram;

    #[test]
    fn families_and_histograms_follow_the_text_format() {
        let mut e = Exposition::default();
        e.family(
            "gotalk_commands_total",
            "Replies.",
            "counter",
            &[(&[("command", "send"), ("outcome", "ok")], 3.0)],
        );
        let h = Histogram::new(&[0.5]);
        h.observe(0.25);
        e.histogram("gotalk_x_seconds", "X.", &h.snapshot());
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP gotalk_commands_total Replies.\n\
             # TYPE gotalk_commands_total counter\n\
             gotalk_commands_total{command=\"send\",outcome=\"ok\"} 3\n\
             # HELP gotalk_x_seconds X.\n\
             # TYPE gotalk_x_seconds histogram\n\
             gotalk_x_seconds_bucket{le=\"0.5\"} 1\n\
             gotalk_x_seconds_bucket{le=\"+Inf\"} 1\n\
             gotalk_x_seconds_sum 0.25\n\
             gotalk_x_seconds_count 1\n"
        );
    }
}
