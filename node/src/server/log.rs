//! The human log, in redis-server's line format so that one parser reads both:
//! `<pid>:<role> <DD Mon YYYY HH:MM:SS.mmm> <lvl> <message>`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cluster::LogLevel;

/// Parses redis's loglevel names.
pub fn parse_level(name: &str) -> LogLevel {
    match name {
        "debug" => LogLevel::Debug,
        "verbose" => LogLevel::Verbose,
        "warning" => LogLevel::Warning,
        _ => LogLevel::Notice,
    }
}

fn level_char(level: LogLevel) -> char {
    match level {
        LogLevel::Debug => '.',
        LogLevel::Verbose => '-',
        LogLevel::Notice => '*',
        LogLevel::Warning => '#',
    }
}

/// Writes log lines to a file (or stdout when no logfile is set).
pub struct Logger {
    out: Option<File>,
    pub level: LogLevel,
    pid: u32,
}

impl Logger {
    pub fn open(path: &str, level: LogLevel) -> io::Result<Logger> {
        let out = if path.is_empty() {
            None
        } else {
            Some(OpenOptions::new().create(true).append(true).open(path)?)
        };
        Ok(Logger {
            out,
            level,
            pid: std::process::id(),
        })
    }

    /// Writes text as is, without the line prefix (redis `serverLogRaw`: the
    /// startup logo), if `level` passes the filter.
    pub fn log_raw(&mut self, level: LogLevel, text: &str) {
        if level < self.level {
            return;
        }
        let _ = match &mut self.out {
            Some(f) => f.write_all(text.as_bytes()),
            None => io::stdout().write_all(text.as_bytes()),
        };
    }

    /// Logs one line if `level` passes the filter. `replica` picks the role letter.
    pub fn log(&mut self, level: LogLevel, replica: bool, text: &str) {
        if level < self.level {
            return;
        }
        let line = format!(
            "{}:{} {} {} {}\n",
            self.pid,
            if replica { 'S' } else { 'M' },
            format_time(SystemTime::now()),
            level_char(level),
            text
        );
        // A failing log write must not take the node down; there is nowhere else to report it.
        let _ = match &mut self.out {
            Some(f) => f.write_all(line.as_bytes()),
            None => io::stdout().write_all(line.as_bytes()),
        };
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `22 Nov 2026 18:58:05.776`, in UTC (redis uses local time; these machines run UTC).
pub fn format_time(t: SystemTime) -> String {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        d,
        MONTHS[(m - 1) as usize],
        y,
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        millis
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_like_redis() {
        // 2026-11-22 18:58:05.776 UTC
        let t = UNIX_EPOCH + Duration::from_millis(1_795_373_885_776);
        assert_eq!(format_time(t), "22 Nov 2026 18:58:05.776");
        assert_eq!(format_time(UNIX_EPOCH), "01 Jan 1970 00:00:00.000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(format_time(leap), "29 Feb 2000 00:00:00.000");
    }
}
