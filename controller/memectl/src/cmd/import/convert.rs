//! Pure conversions from compose's spellings: DNS labels from names, shell words, Go durations
//! and Docker byte sizes.

/// A DNS label made from a name: lowercase, runs of other characters as one `-`, at most 63.
pub(super) fn dns_label(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    let mut label: String = trimmed.chars().take(63).collect();
    while label.ends_with('-') {
        label.pop();
    }
    label
}

/// Splits a command line into words like a POSIX shell (quotes and backslashes), without
/// expanding anything: what compose does with a string `command`.
pub(super) fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed single quote in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unclosed double quote in {text:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed double quote in {text:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => word.push('\\'),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// A Go duration (`1m30s`, `1.5s`, `500ms`, `10us`) in nanoseconds, as compose reads them.
pub(super) fn parse_go_duration(text: &str) -> Result<u128, String> {
    let expected = || format!("invalid duration {text:?}: expected a duration like 10s, 1m30s or 500ms");
    let t = text.trim().trim_start_matches('+');
    if t == "0" {
        return Ok(0);
    }
    if t.is_empty() {
        return Err(expected());
    }
    let mut rest = t;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(expected());
        }
        let number = &rest[..number_len];
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(expected()),
        };
        rest = &rest[unit_len..];
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(expected());
        }
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| expected())? };
        let mut value = whole.checked_mul(scale).ok_or_else(expected)?;
        let (mut numerator, mut denominator) = (0u128, 1u128);
        for digit in frac.chars().take(18) {
            numerator = numerator * 10 + u128::from(digit.to_digit(10).unwrap_or(0));
            denominator *= 10;
        }
        value += numerator * scale / denominator;
        total = total.checked_add(value).ok_or_else(expected)?;
    }
    Ok(total)
}

/// Compose/Docker memory (`512M`, `1.5g`, `1024k`, `512mb`, `1073741824`): every unit is
/// binary, as Docker reads them (`512M` is 512 MiB). In bytes.
pub(super) fn parse_compose_bytes(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid memory {text:?}: expected bytes such as 512M, 1G or 1.5g");
    let t = text.trim();
    let number_len = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(number_len);
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut unit = unit.as_str();
    let power = match unit.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            unit = &unit[1..];
            1 + "kmgtp".find(c).unwrap_or(0)
        }
        _ => 0,
    };
    let unit = unit.strip_prefix('i').filter(|_| power > 0).unwrap_or(unit);
    if !(unit.is_empty() || unit == "b") {
        return Err(bad());
    }
    let multiplier: u128 = 1u128 << (10 * power);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || frac.contains('.') || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: u128 = whole.parse().map_err(|_| bad())?;
    let (mut numerator, mut denominator) = (0u128, 1u128);
    for digit in frac.chars().take(18) {
        numerator = numerator * 10 + u128::from(digit.to_digit(10).ok_or_else(bad)?);
        denominator *= 10;
    }
    let bytes = whole.checked_mul(multiplier).ok_or_else(bad)? + numerator * multiplier / denominator;
    u64::try_from(bytes).map_err(|_| format!("invalid memory {text:?}: too large"))
}

#[cfg(test)]
mod tests {
    use meme_api::units::ByteQuantity;

    use super::*;

    #[test]
    fn units_should_convert_like_docker() {
        assert_eq!(parse_compose_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_compose_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_compose_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_compose_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(parse_compose_bytes("64mb"), Ok(64 << 20));
        assert_eq!(parse_compose_bytes("2Gi"), Ok(2 << 30));
        assert_eq!(parse_compose_bytes("1024"), Ok(1024));
        assert!(parse_compose_bytes("lots").is_err() && parse_compose_bytes("5x").is_err());
        assert_eq!(
            ByteQuantity::parse(&parse_compose_bytes("512M").unwrap().to_string()).unwrap().to_string(),
            "512Mi"
        );

        assert_eq!(parse_go_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_go_duration("10us"), Ok(10_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        for bad in ["", "10", "s", "1x", "1..5s", "-1s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_should_become_dns_labels() {
        assert_eq!(dns_label("backend"), "backend");
        assert_eq!(dns_label("Redis_Data"), "redis-data");
        assert_eq!(dns_label("_web__1_"), "web-1");
        assert_eq!(dns_label("a--b"), "a--b");
        assert_eq!(dns_label(&"x".repeat(80)).len(), 63);
        assert_eq!(dns_label("___"), "");
    }

    #[test]
    fn shell_split_should_honour_quotes() {
        assert_eq!(
            shell_split(r#"server /data --console-address ":9001""#).unwrap(),
            ["server", "/data", "--console-address", ":9001"]
        );
        assert_eq!(shell_split(r#"sh -c 'echo "hi there"'"#).unwrap(), ["sh", "-c", r#"echo "hi there""#]);
        assert_eq!(shell_split(r"a\ b c").unwrap(), ["a b", "c"]);
        assert_eq!(shell_split(r#"x "" y"#).unwrap(), ["x", "", "y"]);
        assert!(shell_split("'open").is_err());
    }
}
