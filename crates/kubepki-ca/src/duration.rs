//! Durations as Go writes them: the one duration parser of kubepki.
//!
//! [`parse_go_duration`] is Go's `time.ParseDuration`, rule for rule: an optional sign, then one
//! or more decimal numbers (with an optional fraction) each followed by a unit `ns`, `us`, `µs`
//! (either micro sign), `ms`, `s`, `m` or `h`; the bare `0`; no spaces; at most ±(2⁶³−1)
//! nanoseconds. kubeadm reads `certificateValidityPeriod` with it, and the CLI's `--validity`
//! flags promise a "Go duration". [`parse_duration`] is the same grammar limited to positive
//! values (a validity), for kubeadm's config files; [`parse_duration_with_days`] also accepts
//! a whole-day unit `d`, the one kubepki extension, for kubepki's own command-line flags
//! (`--validity 3650d`, `--warn-within 30d`; see `docs/certs.md`).

use time::Duration;

/// Why a duration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Not a duration at all (Go: "time: invalid duration"); also a value beyond ±(2⁶³−1) ns.
    #[error(
        "invalid duration \"{input}\" (a Go duration such as 8760h, 30m, 1h30m, 1.5h or 10m0.5s)"
    )]
    Invalid {
        /// The text as given.
        input: String,
    },
    /// A number without a unit, e.g. `10` (Go: "time: missing unit in duration").
    #[error("missing unit in duration \"{input}\" (units: ns, us, µs, ms, s, m, h{days})")]
    MissingUnit {
        /// The text as given.
        input: String,
        /// `, d` where whole days are accepted, else empty.
        days: &'static str,
    },
    /// An unknown unit, e.g. `1y` (Go: "time: unknown unit").
    #[error(
        "unknown unit \"{unit}\" in duration \"{input}\" (units: ns, us, µs, ms, s, m, h{days})"
    )]
    UnknownUnit {
        /// The unit.
        unit: String,
        /// The text as given.
        input: String,
        /// `, d` where whole days are accepted, else empty.
        days: &'static str,
    },
    /// Zero or negative where only a positive duration makes sense.
    #[error("duration \"{input}\" must be positive")]
    NotPositive {
        /// The text as given.
        input: String,
    },
}

const NANOS_PER_DAY: u64 = 86_400_000_000_000;
const LIMIT: u64 = 1 << 63;

/// Go's `time.ParseDuration`: the signed duration `s` denotes.
///
/// ```
/// use kubepki_ca::parse_go_duration;
/// use time::Duration;
///
/// assert_eq!(parse_go_duration("1.5h"), Ok(Duration::minutes(90)));
/// assert_eq!(parse_go_duration("-10m0.5s"), Ok(-Duration::milliseconds(600_500)));
/// assert!(parse_go_duration("1d").is_err());
/// ```
pub fn parse_go_duration(s: &str) -> Result<Duration, DurationError> {
    parse(s, false)
}

/// A positive Go duration (a validity or signing duration); zero and negative values are
/// refused.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    positive(s, parse(s, false)?)
}

/// A positive Go duration in which the unit `d` (24h) may also appear: `30d` = `720h`,
/// `1d12h` = `36h`. For kubepki's own command-line flags, never for kubeadm's config files
/// (kubeadm refuses `d`).
pub fn parse_duration_with_days(s: &str) -> Result<Duration, DurationError> {
    positive(s, parse(s, true)?)
}

fn positive(s: &str, d: Duration) -> Result<Duration, DurationError> {
    if d <= Duration::ZERO {
        return Err(DurationError::NotPositive { input: s.into() });
    }
    Ok(d)
}

/// `d` in Go's notation without zero trailing units: `2m`, `1h30m`, `8760h`, `10m0.5s`, `0s`.
/// Used to report a duration in the terms a user writes.
pub fn format_duration(d: Duration) -> String {
    let neg = d.is_negative();
    let total = d.unsigned_abs();
    let (secs, nanos) = (total.as_secs(), total.subsec_nanos());
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::from(if neg { "-" } else { "" });
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || nanos > 0 {
        out.push_str(&s.to_string());
        if nanos > 0 {
            let frac = format!("{nanos:09}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out.push('s');
    }
    if h == 0 && m == 0 && s == 0 && nanos == 0 {
        out = "0s".into();
    }
    out
}

/// The grammar of Go's `time.ParseDuration` (`[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`), with its
/// overflow rules; `days` adds the unit `d`.
fn parse(orig: &str, days: bool) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid { input: orig.into() };
    let days_note = if days { ", d" } else { "" };
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let [c @ (b'-' | b'+'), rest @ ..] = s {
        neg = *c == b'-';
        s = rest;
    }
    if s == b"0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        // The next character must be [0-9.].
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // [0-9]*
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &s[..digits] {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        s = &s[digits..];
        let pre = digits > 0;
        // (\.[0-9]*)?  Fraction digits beyond 63 bits of precision are ignored, as in Go.
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if let [b'.', rest @ ..] = s {
            s = rest;
            let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &s[..n] {
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            s = &s[n..];
            post = n > 0;
        }
        if !pre && !post {
            // No digits, e.g. ".s" or "-.s".
            return Err(invalid());
        }
        // The unit: everything up to the next [0-9.].
        let n = s
            .iter()
            .take_while(|&&c| c != b'.' && !c.is_ascii_digit())
            .count();
        if n == 0 {
            return Err(DurationError::MissingUnit {
                input: orig.into(),
                days: days_note,
            });
        }
        let unit = match &s[..n] {
            b"ns" => 1,
            // "µs" (U+00B5 micro sign) and "μs" (U+03BC Greek mu), in UTF-8.
            b"us" | [0xc2, 0xb5, b's'] | [0xce, 0xbc, b's'] => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            b"d" if days => NANOS_PER_DAY,
            other => {
                return Err(DurationError::UnknownUnit {
                    unit: String::from_utf8_lossy(other).into_owned(),
                    input: orig.into(),
                    days: days_note,
                });
            }
        };
        s = &s[n..];
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Go computes the fraction in float64 (exact to the nanosecond for hours) and
            // truncates.
            let frac = (f as f64 * (unit as f64 / scale)) as u64;
            v = v.checked_add(frac).ok_or_else(invalid)?;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    let nanos = if neg {
        // -2⁶³ is representable.
        if total == LIMIT {
            i64::MIN
        } else {
            -i64::try_from(total).map_err(|_| invalid())?
        }
    } else {
        i64::try_from(total).map_err(|_| invalid())?
    };
    Ok(Duration::nanoseconds(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1;
    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;

    /// The accepted inputs of Go's own table (`parseDurationTests` in Go's
    /// `src/time/time_test.go`), with the nanoseconds Go returns.
    const GO_ACCEPTS: &[(&str, i64)] = &[
        // simple
        ("0", 0),
        ("5s", 5 * S),
        ("30s", 30 * S),
        ("1478s", 1478 * S),
        // sign
        ("-5s", -5 * S),
        ("+5s", 5 * S),
        ("-0", 0),
        ("+0", 0),
        // decimal
        ("5.0s", 5 * S),
        ("5.6s", 5 * S + 600 * MS),
        ("5.s", 5 * S),
        (".5s", 500 * MS),
        ("1.0s", S),
        ("1.00s", S),
        ("1.004s", S + 4 * MS),
        ("1.0040s", S + 4 * MS),
        ("100.00100s", 100 * S + MS),
        // different units
        ("10ns", 10 * NS),
        ("11us", 11 * US),
        ("12µs", 12 * US), // U+00B5
        ("12μs", 12 * US), // U+03BC
        ("13ms", 13 * MS),
        ("14s", 14 * S),
        ("15m", 15 * M),
        ("16h", 16 * H),
        // composite durations
        ("3h30m", 3 * H + 30 * M),
        ("10.5s4m", 4 * M + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
        (
            "1h2m3s4ms5us6ns",
            H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
        ),
        ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
        // large value
        ("52763797000ns", 52763797000 * NS),
        // more than 9 digits after decimal point, see https://golang.org/issue/6617
        ("0.3333333333333333333h", 20 * M),
        // 9007199254740993 = 1<<53+1 cannot be stored precisely in a float64
        ("9007199254740993ns", (1 << 53) + NS),
        // largest duration that can be represented by int64 in nanoseconds
        ("9223372036854775807ns", i64::MAX),
        ("9223372036854775.807us", i64::MAX),
        ("9223372036s854ms775us807ns", i64::MAX),
        ("-9223372036854775808ns", i64::MIN),
        ("-9223372036854775.808us", i64::MIN),
        ("-9223372036s854ms775us808ns", i64::MIN),
        // largest negative value
        ("-9223372036854775808ns", i64::MIN),
        // largest negative round trip value, see https://golang.org/issue/48629
        ("-2562047h47m16.854775808s", i64::MIN),
        // huge string; issue 15011.
        ("0.100000000000000000000h", 6 * M),
        // This value tests the first overflow check in leadingFraction.
        ("0.830103483285477580700h", 49 * M + 48 * S + 372539827 * NS),
        // The two durations of issue 14.
        ("1.5h", 90 * M),
        ("10m0.5s", 10 * M + 500 * MS),
    ];

    /// The refused inputs of Go's own table (`parseDurationErrorTests`) and others Go refuses.
    const GO_REFUSES: &[&str] = &[
        // invalid
        "",
        "3",
        "-",
        "s",
        ".",
        "-.",
        ".s",
        "+.s",
        "1d",
        "\u{85}\u{85}",
        "\u{ffff}",
        "hello \u{ffff}world",
        "\u{fffd}",
        "\u{fffd} hello \u{fffd} world",
        // overflow
        "9223372036854775810ns",
        "9223372036854775808ns",
        "-9223372036854775809ns",
        "9223372036854776us",
        "3000000h",
        "9223372036854775.808us",
        "9223372036854ms775us808ns",
        // not Go either
        " 1h",
        "1h ",
        "1 h",
        "1H",
        "1e3s",
        "0x10s",
        "++1s",
        "1h-1m",
        "1y",
        "00",
    ];

    #[test]
    fn go_accepts_and_gives_the_same_value() {
        for (input, nanos) in GO_ACCEPTS {
            assert_eq!(
                parse_go_duration(input),
                Ok(Duration::nanoseconds(*nanos)),
                "{input}"
            );
        }
    }

    #[test]
    fn go_refuses() {
        for input in GO_REFUSES {
            assert!(parse_go_duration(input).is_err(), "{input:?} was accepted");
        }
        // "00" is two digits, not the special "0": a missing unit, as in Go.
        assert!(matches!(
            parse_go_duration("00"),
            Err(DurationError::MissingUnit { .. })
        ));
        assert_eq!(
            parse_go_duration("1y").err().map(|e| e.to_string()),
            Some("unknown unit \"y\" in duration \"1y\" (units: ns, us, µs, ms, s, m, h)".into())
        );
    }

    #[test]
    fn validities_are_positive() {
        assert_eq!(parse_duration("8760h"), Ok(Duration::hours(8760)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::minutes(90)));
        for input in ["0", "0s", "-1h", "-0"] {
            assert_eq!(
                parse_duration(input),
                Err(DurationError::NotPositive {
                    input: input.into()
                }),
                "{input}"
            );
        }
        assert!(parse_duration("365d").is_err());
        assert!(parse_duration("99999999999999999h").is_err());
    }

    #[test]
    fn days_only_where_asked() {
        assert_eq!(parse_duration_with_days("30d"), Ok(Duration::days(30)));
        assert_eq!(parse_duration_with_days("1d12h"), Ok(Duration::hours(36)));
        assert_eq!(parse_duration_with_days("720h"), Ok(Duration::days(30)));
        assert!(parse_duration_with_days("-5d").is_err());
        assert!(
            parse_duration_with_days("106752d").is_err(),
            "beyond 2^63 ns"
        );
    }

    #[test]
    fn formatted_in_the_terms_a_user_writes() {
        let f = |s: &str| parse_go_duration(s).map(format_duration);
        assert_eq!(f("2m"), Ok("2m".into()));
        assert_eq!(f("120s"), Ok("2m".into()));
        assert_eq!(f("1.5h"), Ok("1h30m".into()));
        assert_eq!(f("8760h"), Ok("8760h".into()));
        assert_eq!(f("10m0.5s"), Ok("10m0.5s".into()));
        assert_eq!(f("-90s"), Ok("-1m30s".into()));
        assert_eq!(f("0"), Ok("0s".into()));
        assert_eq!(f("1ns"), Ok("0.000000001s".into()));
    }
}
