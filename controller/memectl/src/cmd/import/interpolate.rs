//! `${VAR}` interpolation as compose does it: the process environment first, then `.env` next to
//! the compose file (or the `--env-file`s), with compose's defaults, errors and `$$`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Where `${VAR}` takes its values: the process environment, then the env files.
pub(super) struct Environment {
    /// Variable → (value, the file that set it, as shown).
    pub(super) file_vars: BTreeMap<String, (String, String)>,
    /// The env files read, as shown; `implicit` when it is the `.env` next to the compose file,
    /// read because it happened to be there (as compose does).
    pub(super) files: Vec<String>,
    pub(super) implicit: bool,
}

impl Environment {
    /// The `--env-file`s if any were given, else `.env` next to the compose file if it exists.
    pub(super) fn load(compose: &Path, env_files: &[PathBuf]) -> anyhow::Result<Self> {
        let mut env = Self { file_vars: BTreeMap::new(), files: Vec::new(), implicit: env_files.is_empty() };
        let default_file = compose.parent().unwrap_or(Path::new("")).join(".env");
        let files: Vec<PathBuf> = if env_files.is_empty() {
            if default_file.is_file() { vec![default_file] } else { Vec::new() }
        } else {
            env_files.to_vec()
        };
        for file in files {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let vars = parse_dotenv(&text, &|name| env.get(name));
            let shown = file.display().to_string();
            env.file_vars.extend(vars.into_iter().map(|(k, v)| (k, (v, shown.clone()))));
            env.files.push(shown);
        }
        Ok(env)
    }

    pub(super) fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().or_else(|| self.file_vars.get(name).map(|(v, _)| v.clone()))
    }

    /// Where `name` is set: `Some(None)` in the process environment, `Some(Some(file))` in an
    /// env file, `None` nowhere.
    pub(super) fn source(&self, name: &str) -> Option<Option<String>> {
        if std::env::var_os(name).is_some() {
            return Some(None);
        }
        self.file_vars.get(name).map(|(_, file)| Some(file.clone()))
    }
}

/// Parses a `.env` file: `[export ]KEY=VALUE` lines, `#` comments, single quotes literal,
/// double quotes with `\n`-style escapes, and `${VAR}` interpolation of unquoted and
/// double-quoted values (from the variables above and the lookup).
pub(super) fn parse_dotenv(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else { continue };
        let key = key.trim().to_owned();
        let rest = rest.trim_start();
        let known =
            |name: &str| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()).or_else(|| lookup(name));
        let value = if let Some(body) = rest.strip_prefix('\'') {
            let mut body = body.to_owned();
            while !body.contains('\'') {
                let Some(next) = lines.next() else { break };
                body.push('\n');
                body.push_str(next);
            }
            body.split('\'').next().unwrap_or_default().to_owned()
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut body = body.to_owned();
            while closing_quote(&body).is_none() {
                let Some(next) = lines.next() else { break };
                body.push('\n');
                body.push_str(next);
            }
            let end = closing_quote(&body).unwrap_or(body.len());
            let unescaped = unescape_double(&body[..end]);
            interpolate(&unescaped, &known).value
        } else {
            let value = rest.find(" #").map_or(rest, |i| &rest[..i]).trim_end();
            interpolate(value, &known).value
        };
        vars.push((key, value));
    }
    vars
}

/// The byte index of the first unescaped `"`.
pub(super) fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

pub(super) fn unescape_double(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The result of interpolating one string.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Interpolated {
    pub(super) value: String,
    /// Every variable the text refers to.
    pub(super) vars: Vec<String>,
    /// Variables referred to without a default and not set.
    pub(super) missing: Vec<String>,
    /// `${VAR:?message}` failures and malformed references.
    pub(super) errors: Vec<String>,
}

/// Compose interpolation: `$$` is a `$`; `$VAR` and `${VAR}`; `${VAR:-default}` (unset or
/// empty) and `${VAR-default}` (unset); `${VAR:?err}` / `${VAR?err}`; `${VAR:+alt}` /
/// `${VAR+alt}`. Defaults may nest references. A missing variable becomes the empty string.
pub(super) fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Interpolated {
    let mut out = Interpolated::default();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let Some(offset) = text[i..].find('$') else {
            out.value.push_str(&text[i..]);
            break;
        };
        out.value.push_str(&text[i..i + offset]);
        i += offset;
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.value.push('$');
                i += 2;
            }
            Some(b'{') => {
                let Some(len) = braced_len(&text[i + 2..]) else {
                    out.errors.push(format!("unclosed ${{ in {text:?}: kept as written"));
                    out.value.push_str(&text[i..]);
                    break;
                };
                let inner = &text[i + 2..i + 2 + len];
                braced(inner, lookup, &mut out);
                i += 2 + len + 1;
            }
            Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
                let name_len = text[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(text.len() - i - 1);
                let name = &text[i + 1..i + 1 + name_len];
                substitute(name, lookup, &mut out);
                i += 1 + name_len;
            }
            _ => {
                out.value.push('$');
                i += 1;
            }
        }
    }
    out
}

/// The length of the text of a `${...}` up to its matching `}` (nested `${` counted).
pub(super) fn braced_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 1;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

pub(super) fn substitute(name: &str, lookup: &dyn Fn(&str) -> Option<String>, out: &mut Interpolated) {
    out.vars.push(name.to_owned());
    match lookup(name) {
        Some(value) => out.value.push_str(&value),
        None => out.missing.push(name.to_owned()),
    }
}

/// One `${...}` body.
pub(super) fn braced(inner: &str, lookup: &dyn Fn(&str) -> Option<String>, out: &mut Interpolated) {
    let name_len = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
    let (name, op) = inner.split_at(name_len);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        out.errors.push(format!("invalid interpolation ${{{inner}}}: kept as written"));
        out.value.push_str(&format!("${{{inner}}}"));
        return;
    }
    if op.is_empty() {
        substitute(name, lookup, out);
        return;
    }
    out.vars.push(name.to_owned());
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let nested = |text: &str, out: &mut Interpolated| {
        let inner = interpolate(text, lookup);
        out.value.push_str(&inner.value);
        out.vars.extend(inner.vars);
        out.missing.extend(inner.missing);
        out.errors.extend(inner.errors);
    };
    let (kind, arg) = [":-", ":?", ":+", "-", "?", "+"]
        .iter()
        .find_map(|k| op.strip_prefix(k).map(|rest| (*k, rest)))
        .unwrap_or(("", op));
    match kind {
        ":-" if set_nonempty => out.value.push_str(value.as_deref().unwrap_or_default()),
        ":-" => nested(arg, out),
        "-" if value.is_some() => out.value.push_str(value.as_deref().unwrap_or_default()),
        "-" => nested(arg, out),
        ":+" if set_nonempty => nested(arg, out),
        "+" if value.is_some() => nested(arg, out),
        ":+" | "+" => {}
        ":?" if set_nonempty => out.value.push_str(value.as_deref().unwrap_or_default()),
        "?" if value.is_some() => out.value.push_str(value.as_deref().unwrap_or_default()),
        ":?" | "?" => {
            let why = if arg.is_empty() { "required variable is missing a value".to_owned() } else { arg.to_owned() };
            out.errors.push(format!("variable {name} is required: {why} (substituted an empty string)"));
        }
        _ => {
            out.errors.push(format!("unsupported interpolation ${{{inner}}}: kept as written"));
            out.value.push_str(&format!("${{{inner}}}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn interpolate_should_follow_compose() {
        let env = lookup(&[("TAG", "v1"), ("EMPTY", "")]);
        let run = |text: &str| interpolate(text, &env);
        assert_eq!(run("img:${TAG}").value, "img:v1");
        assert_eq!(run("img:$TAG-x").value, "img:v1-x");
        assert_eq!(run("${MISSING:-abc}").value, "abc");
        assert_eq!(run("${EMPTY:-abc}").value, "abc");
        assert_eq!(run("${EMPTY-abc}").value, "");
        assert_eq!(run("${MISSING-abc}").value, "abc");
        assert_eq!(run("${TAG:+set}").value, "set");
        assert_eq!(run("${MISSING:+set}").value, "");
        assert_eq!(run("${MISSING:-${TAG}}").value, "v1");
        assert_eq!(run("cost $$5").value, "cost $5");
        assert_eq!(run("a $ b").value, "a $ b");
        let missing = run("x${NOPE}y");
        assert_eq!((missing.value.as_str(), missing.missing.as_slice()), ("xy", &["NOPE".to_owned()][..]));
        assert_eq!(run("${NOPE:?must be set}").errors.len(), 1);
        assert_eq!(run("${unclosed").errors.len(), 1);
        assert!(run("${MISSING:-x}").missing.is_empty());
    }

    #[test]
    fn dotenv_should_parse_quotes_comments_and_references() {
        let vars = parse_dotenv(
            "# comment\nexport A=1\nB = two words # note\nC='$A literal'\nD=\"x\\ny ${A}\"\nE=${A}${B}\n\nF\n",
            &|_| None,
        );
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("two words"));
        assert_eq!(get("C"), Some("$A literal"));
        assert_eq!(get("D"), Some("x\ny 1"));
        assert_eq!(get("E"), Some("1two words"));
        assert_eq!(get("F"), None);
    }
}
