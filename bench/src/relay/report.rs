//! How the relay scenario prints its outcomes: one server's table, and
//! two servers side by side with their ratio (`--tls`, `--ws`).

use super::*;

/// Two relay runs of one shape side by side (the second against the
/// first), and any accepted message either run did not deliver.
pub fn print_side_by_side((a_name, a): (&str, &Outcome), (b_name, b): (&str, &Outcome)) {
    let per_cpu = |o: &Outcome| o.relayed_per_server_cpu_s.map_or("n/a".into(), thousands);
    let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
        _ => "n/a".into(),
    };
    let row = |metric: &str, x: String, y: String, r: String| vec![metric.into(), x, y, r];
    let rows = vec![
        row(
            "relayed messages/s",
            thousands(a.relayed_per_s),
            thousands(b.relayed_per_s),
            ratio(Some(b.relayed_per_s), Some(a.relayed_per_s)),
        ),
        row(
            "relayed per server CPU-second",
            per_cpu(a),
            per_cpu(b),
            ratio(b.relayed_per_server_cpu_s, a.relayed_per_server_cpu_s),
        ),
        row(
            "server CPU",
            a.server_cpu.clone(),
            b.server_cpu.clone(),
            String::new(),
        ),
        row(
            "bench CPU",
            a.bench_cpu.clone(),
            b.bench_cpu.clone(),
            String::new(),
        ),
        row(
            "CPU of all other processes",
            a.other_cpu.clone(),
            b.other_cpu.clone(),
            String::new(),
        ),
        row(
            "errors",
            a.errors.to_string(),
            b.errors.to_string(),
            String::new(),
        ),
    ];
    let ratio_name = format!("{b_name} / {a_name}");
    print_table(&["metric", a_name, b_name, &ratio_name], &rows);
    for (name, o) in [(a_name, a), (b_name, b)] {
        if o.delivered_total < o.answered_total {
            println!(
                "{name}: MISSING {} of {} accepted messages",
                o.answered_total - o.delivered_total,
                o.answered_total
            );
        }
    }
}

/// Prints a relay outcome as a two-column table.
pub fn print_outcome(o: &Outcome, rss_kib: Option<u64>) {
    let delivered = if o.delivered_total >= o.answered_total {
        format!(
            "all {} accepted messages",
            thousands(o.answered_total as f64)
        )
    } else {
        format!(
            "{} of {} accepted messages (MISSING {})",
            thousands(o.delivered_total as f64),
            thousands(o.answered_total as f64),
            o.answered_total - o.delivered_total
        )
    };
    let mut rows = vec![
        vec![
            "relayed messages/s (pushes received)".into(),
            thousands(o.relayed_per_s),
        ],
        vec![
            "sends/s (replies received)".into(),
            thousands(o.sends_per_s),
        ],
        vec![
            "messages relayed in the window".into(),
            thousands(o.relayed_in_window as f64),
        ],
        vec!["delivered by the end".into(), delivered],
        vec!["errors".into(), o.errors.to_string()],
        vec!["server CPU".into(), o.server_cpu.clone()],
        vec![
            "relayed per server CPU-second".into(),
            o.relayed_per_server_cpu_s.map_or("n/a".into(), thousands),
        ],
        vec!["bench CPU (this process)".into(), o.bench_cpu.clone()],
        vec!["CPU of all other processes".into(), o.other_cpu.clone()],
    ];
    if let Some(kib) = rss_kib {
        rows.push(vec![
            "server RSS at the end".into(),
            format!("{:.1} MiB", kib as f64 / 1024.0),
        ]);
    }
    print_table(&["metric", "value"], &rows);
    if let Some(e) = &o.first_error {
        println!("first error: {e}");
    }
}
