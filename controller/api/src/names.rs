//! The name grammars manifests must follow: DNS labels and subdomains (service, stack,
//! network, volume and secret names), environment variable names, secret keys and label keys.

/// Why a name was refused, as a phrase to append to "invalid name X: ".
pub type Refusal = &'static str;

/// An RFC 1123 DNS label: 1-63 lowercase letters, digits and `-`, starting and ending with a
/// letter or digit. Service names must be one: they become container names and network aliases.
///
/// # Errors
/// Why the name is not a DNS label.
pub fn check_dns_label(name: &str) -> Result<(), Refusal> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > 63 {
        return Err("must be at most 63 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("must consist of lowercase letters, digits and '-'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

/// An RFC 1123 DNS subdomain: dot-separated DNS labels, at most 253 characters.
///
/// # Errors
/// Why the name is not a DNS subdomain.
pub fn check_dns_subdomain(name: &str) -> Result<(), Refusal> {
    if name.len() > 253 {
        return Err("must be at most 253 characters");
    }
    name.split('.').try_for_each(check_dns_label)
}

/// An environment variable name as POSIX shells accept it: letters, digits and `_`, not
/// starting with a digit.
///
/// # Errors
/// Why the name cannot be an environment variable.
pub fn check_env_name(name: &str) -> Result<(), Refusal> {
    let mut bytes = name.bytes();
    match bytes.next() {
        None => Err("must not be empty"),
        Some(b) if b.is_ascii_digit() => Err("must not start with a digit"),
        Some(b) if !(b.is_ascii_alphabetic() || b == b'_') => Err("must consist of letters, digits and '_'"),
        _ if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') => Err("must consist of letters, digits and '_'"),
        _ => Ok(()),
    }
}

/// A secret key (it names a file under the secret's directory): 1-253 letters, digits, `-`,
/// `_` and `.`, and not `.` or `..`.
///
/// # Errors
/// Why the key cannot name a secret file.
pub fn check_secret_key(key: &str) -> Result<(), Refusal> {
    if key.is_empty() {
        return Err("must not be empty");
    }
    if key.len() > 253 {
        return Err("must be at most 253 characters");
    }
    if key == "." || key == ".." {
        return Err("must not be '.' or '..'");
    }
    if !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err("must consist of letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// A container label key: printable ASCII without whitespace or `=`, at most 253 characters.
///
/// # Errors
/// Why the key cannot be a Docker label key.
pub fn check_label_key(key: &str) -> Result<(), Refusal> {
    if key.is_empty() {
        return Err("must not be empty");
    }
    if key.len() > 253 {
        return Err("must be at most 253 characters");
    }
    if !key.bytes().all(|b| b.is_ascii_graphic() && b != b'=') {
        return Err("must be printable ASCII without spaces or '='");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_label_should_follow_rfc1123() {
        assert!(check_dns_label("backend").is_ok());
        assert!(check_dns_label("a-1").is_ok());
        for bad in ["", "Backend", "-a", "a-", "a_b", "a.b", &"x".repeat(64)] {
            assert!(check_dns_label(bad).is_err(), "{bad}");
        }
        assert!(check_dns_subdomain("my.secret-1").is_ok());
        assert!(check_dns_subdomain("my..secret").is_err());
    }

    #[test]
    fn env_and_key_names_should_be_checked() {
        assert!(check_env_name("LOG_LEVEL").is_ok());
        assert!(check_env_name("_x1").is_ok());
        for bad in ["", "1A", "A-B", "A B", "É"] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
        assert!(check_secret_key("secret-key.txt").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(check_secret_key(bad).is_err(), "{bad}");
        }
    }
}
