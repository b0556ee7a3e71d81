use time::Duration;

/// Parses a Go-style duration as kubeadm and Kubernetes write them (`8760h`, `30m`, `1h30m`,
/// `90s`), plus whole days (`365d`). The result must be positive.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    let bad = || format!("invalid duration \"{s}\" (examples: 8760h, 30m, 1h30m, 365d)");
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    if total <= 0 {
        return Err(format!("duration \"{s}\" must be positive"));
    }
    // Refuse durations that would leave the X.509 time range (year 9999).
    if total > 8000 * 365 * 86_400 {
        return Err(format!("duration \"{s}\" is too long"));
    }
    Ok(Duration::seconds(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations() {
        assert_eq!(parse_duration("8760h"), Ok(Duration::hours(8760)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("365d"), Ok(Duration::days(365)));
        assert_eq!(parse_duration("600s"), Ok(Duration::seconds(600)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("99999999999999999h").is_err());
    }
}
