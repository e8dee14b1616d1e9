//! Where the log goes and in what shape: plain lines on standard error by
//! default (`simple_logger`), or one JSON object per line with
//! `--log-format json`, for log shippers. Nothing here decides what is
//! logged; that lives with the code that logs.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The shape of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the logger; says why not if one cannot be installed.
pub fn init(format: LogFormat, level: LevelFilter) -> Result<(), log::SetLoggerError> {
    match format {
        LogFormat::Text => simple_logger::SimpleLogger::new()
            .with_level(level)
            .with_utc_timestamps()
            .init(),
        LogFormat::Json => {
            log::set_boxed_logger(Box::new(JsonLogger { level }))?;
            log::set_max_level(level);
            Ok(())
        }
    }
}

/// `{"ts":"2026-11-29T18:41:38.123Z","level":"INFO","target":"gotalk","msg":"…"}`.
struct JsonLogger {
    level: LevelFilter,
}

impl Log for JsonLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = json_line(
            now_ms(),
            record.level(),
            record.target(),
            &record.args().to_string(),
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn json_line(ms: u64, level: Level, target: &str, message: &str) -> String {
    let mut out = Vec::with_capacity(message.len() + 96);
    out.extend_from_slice(b"{\"ts\":\"");
    out.extend_from_slice(rfc3339_utc(ms).as_bytes());
    out.extend_from_slice(b"\",\"level\":\"");
    out.extend_from_slice(level.as_str().as_bytes());
    out.extend_from_slice(b"\",\"target\":");
    crate::json::push_str(&mut out, target);
    out.extend_from_slice(b",\"msg\":");
    crate::json::push_str(&mut out, message);
    out.extend_from_slice(b"}\n");
    String::from_utf8(out).expect("JSON of UTF-8 text is UTF-8")
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch.
pub fn rfc3339_utc(ms: u64) -> String {
    let (days, rest) = (ms / 86_400_000, ms % 86_400_000);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc(1_795_977_698_123), "2026-11-29T18:41:38.123Z");
    }

    #[test]
    fn lines_are_json_objects() {
        let line = json_line(0, Level::Warn, "gotalk", "a \"quoted\"\nline");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["msg"], "a \"quoted\"\nline");
        assert_eq!(value["ts"], "1970-01-01T00:00:00.000Z");
        assert!(line.ends_with("}\n"));
    }
}
