//! `memectl import compose FILE [--stack NAME] [-o DIR | --stdout] [--force] [--env-file FILE]...`:
//! turns a docker-compose file into manifests: one `Stack` (its networks and named volumes) and
//! one `Deployment` per service, written as `stack.yaml` and `<service>.yaml` in
//! `manifests/<stack>` (or printed as one multi-document stream).
//!
//! The import is lenient and loud: the compose file is read into a generic, order-preserving
//! `Node` tree, every key the manifests can express is mapped, and every key they cannot is
//! reported as a warning at its `file:line:col` (never dropped silently). `${VAR}` interpolation
//! follows compose: the process environment first, then `.env` next to the file (or the
//! `--env-file`s). Secrets never reach the output: an environment variable whose name looks
//! secret (or whose value interpolates such a variable) becomes a `secretKeyRef` to
//! `<--secrets-dir>/<service>/<key>`, and its value is not even interpolated.
//!
//! The generated manifests are then loaded with [`meme_api::load`], exactly as the controller
//! would load them: they are written only when they validate (exit 0), else the diagnostics are
//! printed and nothing is written (exit 1) unless `--force`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use meme_api::position::{PathIndex, Pos, Split, split_documents};
use meme_api::units::{ByteQuantity, Cpus, Duration};
use meme_api::v1alpha1::{
    API_VERSION, EnvVar, EnvVarSource, ImagePullPolicy, NetworkSpec, ObjectMeta, Protocol, ResourceLimits,
    ResourceReservations, SecretKeySelector, Stack, StackSpec, Strategy, StrategyType, VolumeSpec,
};
use meme_api::{ManifestTree, names};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::{FlowMap, FlowSeq};

use crate::cli::{CheckError, Outcome};
use crate::output;

/// The prefix of the container labels the controller owns.
const RESERVED_LABEL_PREFIX: &str = "pro.memeit.";

/// Docker's health check defaults, used where the compose file leaves a field out, so the
/// imported check times exactly like the one compose ran.
const DOCKER_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
const DOCKER_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
const DOCKER_HEALTH_RETRIES: u32 = 3;

/// Flags of `import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    source: Source,
}

/// What to import from.
#[derive(Debug, clap::Subcommand)]
enum Source {
    /// Convert a docker-compose file into manifests: a Stack, and one Deployment per service.
    Compose(ComposeArgs),
}

/// Flags of `import compose`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Every compose key the manifests cannot express is reported as a warning with its file:line:col.
Environment variables whose name looks secret (*PASSWORD*, *SECRET*, *TOKEN*, *_KEY, *ACCESS_KEY*)
become secretKeyRefs and their values are never written or printed: put each value in the file
the summary names, on the controller's host. The result is validated like `memectl validate`
does: exit 0 when it is valid, 1 when it is not (nothing is written unless --force) or when a
file exists (unless --force), 2 when the compose file cannot be read.")]
pub struct ComposeArgs {
    /// The compose file (docker-compose.yml, compose.yaml, ...).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The stack's name (default: the compose file's `name:`, else its directory's name).
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    /// The folder to write the manifests into (default: manifests/<stack>).
    #[arg(short = 'o', long = "output-dir", value_name = "DIR", conflicts_with = "stdout")]
    output_dir: Option<PathBuf>,
    /// Print the manifests as one multi-document YAML stream instead of writing files.
    #[arg(long)]
    stdout: bool,
    /// Overwrite existing files, and write the manifests even when they do not validate.
    #[arg(long)]
    force: bool,
    /// Variables for ${VAR} interpolation, read instead of the `.env` next to the compose file
    /// (repeatable, later files win; the process environment wins over all, as in compose).
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
}

/// Runs `import`.
///
/// # Errors
/// The compose file cannot be read or parsed (exit 2), or existing files would be overwritten
/// (exit 1).
pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    match &args.source {
        Source::Compose(args) => compose(args),
    }
}

fn compose(args: &ComposeArgs) -> anyhow::Result<Outcome> {
    let shown = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {shown}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!("{shown}: not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to())
    })?;
    let document = parse_compose(&text, &shown)?;
    let env = Environment::load(&args.file, &args.env_file)?;
    let dir_name = std::path::absolute(&args.file)
        .ok()
        .and_then(|p| p.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let compose_dir = args.file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut importer = Importer::new(&shown, &document.index, &env, &compose_dir);
    let import = importer.import(&document.root, args.stack.as_deref(), &dir_name)?;
    let mut findings = importer.findings;
    findings.sort_by_key(|f| (f.pos.line, f.pos.column));

    let out_dir = match &args.output_dir {
        Some(dir) => dir.clone(),
        None => Path::new(crate::repo::DEFAULT_PATH).join(&import.stack),
    };
    let root = if args.stdout { "(stdout)".to_owned() } else { out_dir.display().to_string() };
    let files = render(&import, &shown)?;
    let mut tree = ManifestTree::new(root.clone());
    for (name, content) in &files {
        tree.files.insert(name.clone(), content.clone().into_bytes().into());
    }

    for finding in &findings {
        eprintln!("{}", finding.display(&shown));
    }
    let valid = match meme_api::load(&tree) {
        Ok(set) => {
            eprint!("{}", set.warnings);
            true
        }
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            let n = diagnostics.error_count();
            let errors = if n == 1 { "1 error".to_owned() } else { format!("{n} errors") };
            let (written, write) = if args.stdout { ("printed", "print") } else { ("written", "write") };
            if args.force {
                eprintln!("{root}: the generated manifests do not validate ({errors}); {written} anyway (--force)");
            } else {
                eprintln!(
                    "{root}: the generated manifests do not validate ({errors}): nothing {written}; fix the compose \
                     file, or re-run with --force to {write} them and fix them by hand"
                );
                return Ok(Outcome::CheckFailed);
            }
            false
        }
    };

    let written = if args.stdout {
        let stream = files.iter().map(|(_, text)| text.as_str()).collect::<Vec<_>>().join("---\n");
        output::print(&stream)?;
        None
    } else {
        Some(write_files(&out_dir, &files, args.force)?)
    };
    summary(&import, &findings, &shown, &out_dir, written.as_deref());
    Ok(if valid { Outcome::Success } else { Outcome::CheckFailed })
}

// ---------------------------------------------------------------------------------------------
// Reading the compose file.

/// A YAML value of the compose file: mappings keep their order (services are imported in file
/// order), numbers are kept as text.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    /// An integer or float, as text.
    Num(String),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn as_map(&self) -> Option<&[(String, Node)]> {
        match self {
            Self::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// What the value is, for "expected a list, found a string".
    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Num(_) => "a number",
            Self::Str(_) => "a string",
            Self::Seq(_) => "a list",
            Self::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Num(if v.is_finite() {
            format!("{v}")
        } else if v.is_nan() {
            ".nan".to_owned()
        } else if v > 0.0 {
            ".inf".to_owned()
        } else {
            "-.inf".to_owned()
        }))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let key = match key {
                Node::Str(s) | Node::Num(s) => s,
                Node::Bool(b) => b.to_string(),
                Node::Null => "null".to_owned(),
                Node::Seq(_) | Node::Map(_) => return Err(de::Error::custom("mapping keys must be scalars")),
            };
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// The parsed compose file and the positions of its nodes.
#[derive(Debug)]
struct ComposeDoc {
    root: Node,
    index: PathIndex,
}

/// Parses the compose file: YAML 1.2 (`yes` is a string, as for compose), one document, with
/// the same alias-bomb budget as manifests. Errors carry `file:line:col`.
fn parse_compose(text: &str, shown: &str) -> anyhow::Result<ComposeDoc> {
    // Two documents are enough to say "a single document, please".
    let Split { docs, error, .. } = split_documents(text, 2);
    if let Some(err) = error {
        anyhow::bail!("{shown}:{}:{}: YAML syntax: {}", err.pos.line, err.pos.column, err.message);
    }
    let mut docs: Vec<_> = docs.into_iter().filter(|d| !d.is_empty).collect();
    if docs.is_empty() {
        anyhow::bail!("{shown}: the file is empty: a compose file needs `services`");
    }
    if let Some(second) = docs.get(1) {
        anyhow::bail!(
            "{shown}:{}:{}: a second YAML document: a compose file is a single document",
            second.start.line,
            second.start.column
        );
    }
    let doc = docs.remove(0);
    // The manifests' options (strict booleans, alias-bomb budget), with numbers kept as text
    // where compose would: `0755`, `1_000`.
    let mut options = meme_api::load::yaml_options();
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    let root: Node = serde_saphyr::from_str_with_options(&doc.text, options).map_err(|e| {
        let raw = e.to_string();
        let first = raw.lines().next().unwrap_or_default();
        let message = first.split(" at line ").next().unwrap_or(first);
        match e.location().filter(|l| l.line() > 0) {
            Some(l) => anyhow::anyhow!(
                "{shown}:{}:{}: {message}",
                l.line().saturating_add(u64::from(doc.line_offset)),
                l.column()
            ),
            None => anyhow::anyhow!("{shown}:{}:{}: {message}", doc.start.line, doc.start.column),
        }
    })?;
    match &root {
        Node::Map(_) if root.get("services").is_some() => {}
        Node::Map(_) => anyhow::bail!("{shown}: not a compose file: no top-level `services`"),
        other => anyhow::bail!(
            "{shown}:{}:{}: not a compose file: expected a mapping with `services`, found {}",
            doc.start.line,
            doc.start.column,
            other.kind()
        ),
    }
    Ok(ComposeDoc { root, index: doc.index })
}

// ---------------------------------------------------------------------------------------------
// Interpolation.

/// Where `${VAR}` takes its values: the process environment, then the env files.
struct Environment {
    file_vars: BTreeMap<String, String>,
}

impl Environment {
    /// The `--env-file`s if any were given, else `.env` next to the compose file if it exists.
    fn load(compose: &Path, env_files: &[PathBuf]) -> anyhow::Result<Self> {
        let mut env = Self { file_vars: BTreeMap::new() };
        let default_file = compose.parent().unwrap_or(Path::new("")).join(".env");
        let files: Vec<PathBuf> = if env_files.is_empty() {
            if default_file.is_file() { vec![default_file] } else { Vec::new() }
        } else {
            env_files.to_vec()
        };
        for file in files {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let vars = parse_dotenv(&text, &|name| env.get(name));
            env.file_vars.extend(vars);
        }
        Ok(env)
    }

    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().or_else(|| self.file_vars.get(name).cloned())
    }
}

/// Parses a `.env` file: `[export ]KEY=VALUE` lines, `#` comments, single quotes literal,
/// double quotes with `\n`-style escapes, and `${VAR}` interpolation of unquoted and
/// double-quoted values (from the variables above and the lookup).
fn parse_dotenv(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
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
fn closing_quote(text: &str) -> Option<usize> {
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

fn unescape_double(text: &str) -> String {
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
struct Interpolated {
    value: String,
    /// Every variable the text refers to.
    vars: Vec<String>,
    /// Variables referred to without a default and not set.
    missing: Vec<String>,
    /// `${VAR:?message}` failures and malformed references.
    errors: Vec<String>,
}

/// Compose interpolation: `$$` is a `$`; `$VAR` and `${VAR}`; `${VAR:-default}` (unset or
/// empty) and `${VAR-default}` (unset); `${VAR:?err}` / `${VAR?err}`; `${VAR:+alt}` /
/// `${VAR+alt}`. Defaults may nest references. A missing variable becomes the empty string.
fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Interpolated {
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
fn braced_len(text: &str) -> Option<usize> {
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

fn substitute(name: &str, lookup: &dyn Fn(&str) -> Option<String>, out: &mut Interpolated) {
    out.vars.push(name.to_owned());
    match lookup(name) {
        Some(value) => out.value.push_str(&value),
        None => out.missing.push(name.to_owned()),
    }
}

/// One `${...}` body.
fn braced(inner: &str, lookup: &dyn Fn(&str) -> Option<String>, out: &mut Interpolated) {
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

// ---------------------------------------------------------------------------------------------
// What the import found.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Warning,
    Note,
}

/// A warning or note about one key of the compose file.
#[derive(Clone, Debug)]
struct Finding {
    pos: Pos,
    path: String,
    level: Level,
    message: String,
}

impl Finding {
    fn display(&self, file: &str) -> String {
        let level = match self.level {
            Level::Warning => "warning",
            Level::Note => "note",
        };
        format!("{file}:{}:{}: {level}: {}: {}", self.pos.line, self.pos.column, self.path, self.message)
    }
}

/// A secret the user has to put on the controller's host.
#[derive(Clone, Debug)]
struct SecretHint {
    service: String,
    variable: String,
    key: String,
}

/// One imported service.
#[derive(Debug)]
struct Service {
    name: String,
    compose_name: String,
    file: String,
    spec: Spec,
    secrets: Vec<SecretHint>,
}

/// A Deployment spec, before it is laid out as YAML.
#[derive(Debug, Default)]
struct Spec {
    image: String,
    replicas: Option<u32>,
    command: Option<Vec<String>>,
    args: Option<Vec<String>>,
    env: Vec<EnvVar>,
    ports: Vec<Port>,
    networks: Vec<String>,
    volume_mounts: Vec<Mount>,
    health_check: Option<Health>,
    depends_on: Vec<String>,
    recreate: bool,
    limits: ResourceLimits,
    reservations: ResourceReservations,
    user: Option<String>,
    init: bool,
    read_only: bool,
    stop_grace_period: Option<Duration>,
    image_pull_policy: Option<ImagePullPolicy>,
    labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Port {
    container: u16,
    host: Option<u16>,
    host_ip: Option<String>,
    udp: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    volume: String,
    path: String,
    read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Health {
    exec: Vec<String>,
    interval: Duration,
    timeout: Duration,
    retries: u32,
    start_period: Duration,
}

/// Everything the import produced.
#[derive(Debug)]
struct Import {
    stack: String,
    networks: Vec<NetworkSpec>,
    volumes: Vec<VolumeSpec>,
    services: Vec<Service>,
}

// ---------------------------------------------------------------------------------------------
// Compose → manifests.

/// Walks the compose tree, mapping what the manifests can express and reporting the rest.
struct Importer<'a> {
    file: &'a str,
    index: &'a PathIndex,
    env: &'a Environment,
    /// The compose file's folder: relative bind-mount sources are resolved against it.
    dir: &'a Path,
    findings: Vec<Finding>,
    /// Compose service name → service name.
    services: BTreeMap<String, String>,
    /// Compose volume name → Stack volume name.
    volumes: BTreeMap<String, String>,
    /// Compose network name → Stack network name.
    networks: BTreeMap<String, String>,
    stack_volumes: Vec<VolumeSpec>,
    stack_networks: Vec<NetworkSpec>,
    /// The compose project name (what `docker compose` calls the project).
    project: String,
}

impl<'a> Importer<'a> {
    fn new(file: &'a str, index: &'a PathIndex, env: &'a Environment, dir: &'a Path) -> Self {
        Self {
            file,
            index,
            env,
            dir,
            findings: Vec::new(),
            services: BTreeMap::new(),
            volumes: BTreeMap::new(),
            networks: BTreeMap::new(),
            stack_volumes: Vec::new(),
            stack_networks: Vec::new(),
            project: String::new(),
        }
    }

    fn finding(&mut self, level: Level, path: &str, message: impl Into<String>) {
        let pos = self.index.key_pos(path).unwrap_or(Pos::START);
        self.findings.push(Finding { pos, path: path.to_owned(), level, message: message.into() });
    }

    fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.finding(Level::Warning, path, message);
    }

    fn note(&mut self, path: &str, message: impl Into<String>) {
        self.finding(Level::Note, path, message);
    }

    fn import(&mut self, root: &Node, stack_flag: Option<&str>, dir_name: &str) -> anyhow::Result<Import> {
        let entries = root.as_map().unwrap_or_default();
        let name_node = root.get("name");
        let compose_name = name_node.and_then(|n| self.scalar(n, "name"));
        let project_source = compose_name.clone().unwrap_or_else(|| dir_name.to_owned());
        self.project = project_source
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
            .collect();
        let stack = match stack_flag {
            Some(flag) => {
                names::check_dns_label(flag).map_err(|why| anyhow::anyhow!("invalid --stack {flag:?}: {why}"))?;
                flag.to_owned()
            }
            None => {
                let (source, path) = match &compose_name {
                    Some(name) => (name.as_str(), "name"),
                    None => (dir_name, ""),
                };
                let stack = dns_label(source);
                if stack.is_empty() {
                    anyhow::bail!("{}: cannot make a stack name from {source:?}: pass --stack NAME", self.file);
                }
                if stack != source {
                    let from = if path.is_empty() { "the compose file's directory" } else { "`name`" };
                    self.note(path, format!("stack name {stack:?} made from {from} {source:?} (a DNS label)"));
                }
                stack
            }
        };

        for (key, _) in entries {
            match key.as_str() {
                "services" | "name" | "volumes" | "networks" => {}
                "version" => self.note(key, "obsolete in the compose specification: ignored"),
                "secrets" => self.warn(
                    key,
                    "compose secrets are not imported: give each service its secret as an environment variable \
                     with valueFrom.secretKeyRef (a file on the controller's host)",
                ),
                "configs" => self.warn(
                    key,
                    "compose configs are not imported: put each config file in the manifests folder and list it \
                     under the Deployment's `files`",
                ),
                "include" => self.warn(key, "include is not resolved: the services of included files are not imported"),
                k if k.starts_with("x-") => {}
                other => self.warn(other, format!("unknown top-level key `{other}`: ignored")),
            }
        }

        if let Some(volumes) = root.get("volumes") {
            self.top_level_volumes(volumes);
        }
        if let Some(networks) = root.get("networks") {
            self.top_level_networks(networks);
        }

        let services_node = root.get("services").unwrap_or(&Node::Null);
        let Some(services) = services_node.as_map() else {
            anyhow::bail!(
                "{}: `services` must be a mapping of service names, found {}",
                self.location("services"),
                services_node.kind()
            );
        };
        let mut taken = BTreeSet::new();
        for (compose_name, _) in services {
            let mut name = dns_label(compose_name);
            if name.is_empty() {
                name = "service".to_owned();
            }
            let base = name.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{}-{n}", base.chars().take(60).collect::<String>().trim_end_matches('-'));
                n += 1;
            }
            if &name != compose_name {
                self.warn(
                    &format!("services.{compose_name}"),
                    format!(
                        "service renamed to {name:?}: service names are DNS labels (they become container names \
                         and network aliases); other services reach it as {name:?}"
                    ),
                );
            }
            self.services.insert(compose_name.clone(), name);
        }
        let mut file_names = BTreeSet::from(["stack.yaml".to_owned()]);
        let mut imported = Vec::new();
        for (compose_name, node) in services {
            let path = format!("services.{compose_name}");
            let name = self.services[compose_name].clone();
            if node.as_map().is_none() {
                self.warn(&path, format!("expected a mapping, found {}: service not imported", node.kind()));
                continue;
            }
            let (spec, secrets) = self.service(compose_name, &name, node);
            let mut file = format!("{name}.yaml");
            let mut n = 2;
            while !file_names.insert(file.clone()) {
                file = format!("{name}-{n}.yaml");
                n += 1;
            }
            imported.push(Service { name, compose_name: compose_name.clone(), file, spec, secrets });
        }
        if imported.is_empty() {
            anyhow::bail!("{}: no service to import", self.location("services"));
        }
        Ok(Import {
            stack,
            networks: std::mem::take(&mut self.stack_networks),
            volumes: std::mem::take(&mut self.stack_volumes),
            services: imported,
        })
    }

    fn location(&self, path: &str) -> String {
        let pos = self.index.key_pos(path).unwrap_or(Pos::START);
        format!("{}:{}:{}", self.file, pos.line, pos.column)
    }

    // --- Scalars -------------------------------------------------------------------------------

    /// A scalar as text, interpolated. A string that interpolates a secret-looking variable is
    /// kept as written (the secret stays out of git), with a warning. `None` for null; a
    /// warning and `None` for a list or mapping.
    fn scalar(&mut self, node: &Node, path: &str) -> Option<String> {
        match node {
            Node::Null => None,
            Node::Bool(b) => Some(b.to_string()),
            Node::Num(n) => Some(n.clone()),
            Node::Str(s) => {
                let result = self.interpolated(s, path);
                let secrets: Vec<&String> =
                    result.vars.iter().filter(|v| is_secret_name(v)).collect::<BTreeSet<_>>().into_iter().collect();
                if !secrets.is_empty() && !result.value.is_empty() {
                    let list = secrets.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", ");
                    self.warn(
                        path,
                        format!(
                            "interpolates {list}, which looks secret: kept as written so the value stays out of git \
                             (a shell in the container expands it from its environment; nothing else does)"
                        ),
                    );
                    return Some(s.clone());
                }
                Some(result.value)
            }
            Node::Seq(_) | Node::Map(_) => {
                self.warn(path, format!("expected a single value, found {}: ignored", node.kind()));
                None
            }
        }
    }

    /// Interpolates, reporting missing variables and malformed references.
    fn interpolated(&mut self, text: &str, path: &str) -> Interpolated {
        let env = self.env;
        let result = interpolate(text, &|name| env.get(name));
        for name in result.missing.iter().collect::<BTreeSet<_>>() {
            self.warn(path, format!("variable {name} is not set: substituted an empty string (as compose does)"));
        }
        for error in &result.errors {
            self.warn(path, error.clone());
        }
        result
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match self.scalar(node, path)?.as_str() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            other => {
                self.warn(path, format!("expected true or false, found {other:?}: ignored"));
                None
            }
        }
    }

    fn count(&mut self, node: &Node, path: &str) -> Option<u32> {
        let text = self.scalar(node, path)?;
        match text.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.warn(path, format!("expected a non-negative integer, found {text:?}: ignored"));
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let text = self.scalar(node, path)?;
        match parse_go_duration(&text) {
            Ok(nanos) => {
                let ms = nanos.div_ceil(1_000_000);
                if nanos % 1_000_000 != 0 {
                    self.note(path, format!("{text} rounded up to whole milliseconds"));
                }
                Some(Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
            }
            Err(why) => {
                self.warn(path, format!("{why}: ignored"));
                None
            }
        }
    }

    fn memory(&mut self, node: &Node, path: &str) -> Option<ByteQuantity> {
        let text = self.scalar(node, path)?;
        let quantity = parse_compose_bytes(&text).and_then(|bytes| ByteQuantity::parse(&bytes.to_string()));
        match quantity {
            Ok(q) => Some(q),
            Err(why) => {
                self.warn(path, format!("{why}: ignored"));
                None
            }
        }
    }

    fn cpus(&mut self, node: &Node, path: &str) -> Option<Cpus> {
        let text = self.scalar(node, path)?;
        match Cpus::parse(&text) {
            Ok(c) => Some(c),
            Err(why) => {
                self.warn(path, format!("{why}: ignored"));
                None
            }
        }
    }

    /// A list of scalars, or a single scalar as a one-item list.
    fn strings(&mut self, node: &Node, path: &str) -> Vec<String> {
        match node {
            Node::Seq(items) => {
                items.iter().enumerate().filter_map(|(i, item)| self.scalar(item, &format!("{path}[{i}]"))).collect()
            }
            Node::Null => Vec::new(),
            _ => self.scalar(node, path).into_iter().collect(),
        }
    }

    /// `command`/`entrypoint`: a list as is, a string split like a shell would (no shell runs).
    fn command(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        match node {
            Node::Null => None,
            Node::Seq(_) => Some(self.strings(node, path)),
            _ => {
                let text = self.scalar(node, path)?;
                match shell_split(&text) {
                    Ok(words) => Some(words),
                    Err(why) => {
                        self.warn(path, format!("{why}: split at whitespace"));
                        Some(text.split_whitespace().map(str::to_owned).collect())
                    }
                }
            }
        }
    }

    // --- Top level -----------------------------------------------------------------------------

    fn declare_volume(&mut self, compose_name: &str) -> String {
        if let Some(name) = self.volumes.get(compose_name) {
            return name.clone();
        }
        let mut name = dns_label(compose_name);
        if name.is_empty() {
            name = "volume".to_owned();
        }
        let base = name.clone();
        let mut n = 2;
        while self.stack_volumes.iter().any(|v| v.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.stack_volumes.push(VolumeSpec { name: name.clone() });
        self.volumes.insert(compose_name.to_owned(), name.clone());
        name
    }

    fn declare_network(&mut self, compose_name: &str) -> String {
        if compose_name == "default" {
            return "default".to_owned();
        }
        if let Some(name) = self.networks.get(compose_name) {
            return name.clone();
        }
        let mut name = dns_label(compose_name);
        if name.is_empty() || name == "default" {
            name = "network".to_owned();
        }
        let base = name.clone();
        let mut n = 2;
        while self.stack_networks.iter().any(|v| v.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.stack_networks.push(NetworkSpec { name: name.clone(), internal: false });
        self.networks.insert(compose_name.to_owned(), name.clone());
        name
    }

    fn top_level_volumes(&mut self, node: &Node) {
        let Some(entries) = node.as_map() else {
            if *node != Node::Null {
                self.warn("volumes", format!("expected a mapping of volume names, found {}: ignored", node.kind()));
            }
            return;
        };
        for (compose_name, config) in entries {
            let path = format!("volumes.{compose_name}");
            let name = self.declare_volume(compose_name);
            if &name != compose_name {
                self.note(&path, format!("volume renamed to {name:?} (volume names are DNS labels)"));
            }
            for (key, value) in config.as_map().unwrap_or_default() {
                let key_path = format!("{path}.{key}");
                match key.as_str() {
                    "driver" if self.scalar(value, &key_path).as_deref() == Some("local") => {}
                    "external" if self.boolean(value, &key_path) == Some(false) => {}
                    "external" => self.warn(
                        &key_path,
                        format!(
                            "external volumes are not supported: the controller creates and owns <stack>_{name}; \
                             copy the data over if you need it"
                        ),
                    ),
                    "name" => self.warn(
                        &key_path,
                        format!("custom volume names are not supported: the controller names it <stack>_{name}"),
                    ),
                    k if k.starts_with("x-") => {}
                    other => self.warn(&key_path, format!("volume option `{other}` is not supported: ignored")),
                }
            }
        }
    }

    fn top_level_networks(&mut self, node: &Node) {
        let Some(entries) = node.as_map() else {
            if *node != Node::Null {
                self.warn("networks", format!("expected a mapping of network names, found {}: ignored", node.kind()));
            }
            return;
        };
        for (compose_name, config) in entries {
            let path = format!("networks.{compose_name}");
            let name = self.declare_network(compose_name);
            if &name != compose_name {
                self.note(&path, format!("network renamed to {name:?} (network names are DNS labels)"));
            }
            for (key, value) in config.as_map().unwrap_or_default() {
                let key_path = format!("{path}.{key}");
                match key.as_str() {
                    "internal" if name != "default" => {
                        let internal = self.boolean(value, &key_path).unwrap_or(false);
                        if let Some(n) = self.stack_networks.iter_mut().find(|n| n.name == name) {
                            n.internal = internal;
                        }
                    }
                    "driver" if self.scalar(value, &key_path).as_deref() == Some("bridge") => {}
                    "external" if self.boolean(value, &key_path) == Some(false) => {}
                    "external" => self.warn(
                        &key_path,
                        format!("external networks are not supported: the controller creates and owns <stack>_{name}"),
                    ),
                    "name" => self.warn(
                        &key_path,
                        format!("custom network names are not supported: the controller names it <stack>_{name}"),
                    ),
                    k if k.starts_with("x-") => {}
                    other => self.warn(&key_path, format!("network option `{other}` is not supported: ignored")),
                }
            }
        }
    }

    // --- Services ------------------------------------------------------------------------------

    #[allow(clippy::too_many_lines)] // one compose key after another
    fn service(&mut self, compose_name: &str, name: &str, node: &Node) -> (Spec, Vec<SecretHint>) {
        let base = format!("services.{compose_name}");
        let mut spec = Spec::default();
        let mut secrets = Vec::new();
        let mut image = None;
        let mut build = false;
        let mut profiles = false;
        for (key, value) in node.as_map().unwrap_or_default() {
            let path = format!("{base}.{key}");
            match key.as_str() {
                "image" => image = self.scalar(value, &path),
                "build" => build = true,
                "command" => spec.args = self.command(value, &path),
                "entrypoint" => spec.command = self.command(value, &path),
                "environment" => self.environment(value, &path, name, &mut spec.env, &mut secrets),
                "env_file" => self.env_file(value, &path),
                "ports" => self.ports(value, &path, &mut spec.ports),
                "expose" => self.expose(value, &path, &mut spec.ports),
                "volumes" => self.volumes(value, &path, name, &mut spec.volume_mounts),
                "networks" => self.service_networks(value, &path, &mut spec.networks),
                "depends_on" => self.depends_on(value, &path, &mut spec.depends_on),
                "links" => self.links(value, &path, &mut spec.depends_on),
                "healthcheck" => spec.health_check = self.healthcheck(value, &path),
                "deploy" => self.deploy(value, &path, &mut spec),
                "scale" => spec.replicas = self.count(value, &path).or(spec.replicas),
                "user" => spec.user = self.scalar(value, &path),
                "read_only" => spec.read_only = self.boolean(value, &path).unwrap_or(false),
                "init" => spec.init = self.boolean(value, &path).unwrap_or(false),
                "stop_grace_period" => spec.stop_grace_period = self.duration(value, &path),
                "labels" => self.labels(value, &path, &mut spec.labels),
                "cpus" => spec.limits.cpus = self.cpus(value, &path).or(spec.limits.cpus),
                "mem_limit" => spec.limits.memory = self.memory(value, &path).or(spec.limits.memory),
                "mem_reservation" => spec.reservations.memory = self.memory(value, &path).or(spec.reservations.memory),
                "pull_policy" => spec.image_pull_policy = self.pull_policy(value, &path),
                "profiles" => profiles = !self.strings(value, &path).is_empty(),
                "restart" => self.note(
                    &path,
                    "ignored: the controller keeps every container running itself (it starts what stopped and \
                     replaces what died)",
                ),
                "container_name" => self.warn(
                    &path,
                    format!(
                        "not supported: the controller names containers <stack>-{name}-<hash>-<n>; other services \
                         reach this one as {name:?}"
                    ),
                ),
                "hostname" | "domainname" => {
                    self.warn(&path, format!("not supported: other services reach this one as {name:?}"))
                }
                "logging" => self.warn(&path, "not supported: containers use the engine's default log driver"),
                "secrets" => self.warn(
                    &path,
                    "compose secrets are not imported: pass each as an environment variable with \
                     valueFrom.secretKeyRef (a file under the controller's --secrets-dir)",
                ),
                "configs" => self.warn(
                    &path,
                    "compose configs are not imported: put the file in the manifests folder and list it under \
                     `files: [{path: ..., source: files/...}]`",
                ),
                "extends" => self.warn(
                    &path,
                    "extends is not resolved: the service is imported without what it extends; copy those keys in",
                ),
                "network_mode" => {
                    self.warn(&path, "not supported: services join the stack's networks (default: `default`)")
                }
                "tmpfs" => self.warn(&path, "tmpfs mounts are not supported: ignored"),
                "working_dir" => self.warn(&path, "not supported: set WORKDIR in the image"),
                "privileged" | "cap_add" | "cap_drop" | "devices" | "security_opt" | "userns_mode" | "gpus" => {
                    self.warn(&path, "not supported: the controller grants no extra privileges or devices: ignored")
                }
                k if k.starts_with("x-") => {}
                other => self.warn(&path, format!("`{other}` is not supported by the manifests: ignored")),
            }
        }

        spec.image = match (image, build) {
            (Some(image), true) => {
                self.warn(
                    &format!("{base}.build"),
                    "not supported: the controller runs images, it does not build them; build and push the image \
                     (in CI), then keep `image` pinned to its tag",
                );
                image
            }
            (Some(image), false) => image,
            (None, true) => {
                let image = format!("{}-{}", self.project, compose_name.to_lowercase());
                self.warn(
                    &format!("{base}.build"),
                    format!(
                        "not supported: the controller runs images, it does not build them; using {image:?}, the \
                         image `docker compose build` makes: push it to a registry and pin its tag in `image`"
                    ),
                );
                image
            }
            (None, false) => {
                self.warn(&base, "no `image`: the Deployment needs one");
                String::new()
            }
        };
        if !spec.image.is_empty() && !spec.image.contains('@') {
            let last = spec.image.rsplit('/').next().unwrap_or_default();
            match last.split_once(':') {
                None => self.note(
                    &format!("{base}.image"),
                    "no tag (means :latest): pin a tag or digest, so that a rollout is a commit",
                ),
                Some((_, "latest")) => {
                    self.note(&format!("{base}.image"), ":latest: pin a tag or digest, so that a rollout is a commit")
                }
                Some(_) => {}
            }
        }
        if profiles {
            spec.replicas = Some(0);
            self.warn(
                &format!("{base}.profiles"),
                "compose starts this service only with --profile: imported with replicas: 0 (declared, not running)",
            );
        }
        if spec.ports.iter().any(|p| p.host.is_some()) && !spec.recreate {
            spec.recreate = true;
            self.note(
                &format!("{base}.ports"),
                "publishes a host port: strategy Recreate (the old container stops before the new one starts, \
                 since both cannot hold the port)",
            );
        }
        if !spec.recreate
            && let Some(m) = spec.volume_mounts.iter().find(|m| !m.read_only)
        {
            let volume = m.volume.clone();
            self.note(
                &format!("{base}.volumes"),
                format!(
                    "strategy RollingUpdate starts the new container beside the old one on volume {volume:?}; for a \
                     single-writer store (a database) set `strategy: {{type: Recreate}}`"
                ),
            );
        }
        (spec, secrets)
    }

    fn pull_policy(&mut self, node: &Node, path: &str) -> Option<ImagePullPolicy> {
        match self.scalar(node, path)?.as_str() {
            "always" | "daily" | "weekly" => Some(ImagePullPolicy::Always),
            "never" => Some(ImagePullPolicy::Never),
            "missing" | "if_not_present" => None,
            other => {
                self.warn(path, format!("pull_policy {other:?} is not supported: the default IfNotPresent applies"));
                None
            }
        }
    }

    fn environment(
        &mut self,
        node: &Node,
        path: &str,
        service: &str,
        env: &mut Vec<EnvVar>,
        secrets: &mut Vec<SecretHint>,
    ) {
        // (name, value as written, its path); None: no value (taken from the environment).
        let mut entries: Vec<(String, Option<Node>, String)> = Vec::new();
        match node {
            Node::Map(map) => {
                for (name, value) in map {
                    let value = (*value != Node::Null).then(|| value.clone());
                    entries.push((name.clone(), value, format!("{path}.{name}")));
                }
            }
            Node::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    let text = match item {
                        Node::Str(s) => s.clone(),
                        Node::Num(n) => n.clone(),
                        other => {
                            self.warn(&item_path, format!("expected NAME=VALUE, found {}: ignored", other.kind()));
                            continue;
                        }
                    };
                    match text.split_once('=') {
                        Some((name, value)) => {
                            entries.push((name.to_owned(), Some(Node::Str(value.to_owned())), item_path))
                        }
                        None => entries.push((text, None, item_path)),
                    }
                }
            }
            Node::Null => {}
            other => self.warn(path, format!("expected a list or a mapping, found {}: ignored", other.kind())),
        }
        for (name, value, item_path) in entries {
            let var = if is_secret_name(&name) {
                Some(self.secret_ref(service, &name, &item_path, secrets, None))
            } else {
                match value {
                    None => match self.env.get(&name) {
                        Some(v) => Some(EnvVar { name: name.clone(), value: Some(v), value_from: None }),
                        None => {
                            self.warn(
                                &item_path,
                                format!("{name} has no value here and is not set: left out (as compose does)"),
                            );
                            None
                        }
                    },
                    Some(Node::Str(raw)) => {
                        let result = self.interpolated(&raw, &item_path);
                        let tainted: BTreeSet<&String> = result.vars.iter().filter(|v| is_secret_name(v)).collect();
                        if tainted.is_empty() || result.value.is_empty() {
                            Some(EnvVar { name: name.clone(), value: Some(result.value), value_from: None })
                        } else {
                            let via = tainted.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", ");
                            Some(self.secret_ref(service, &name, &item_path, secrets, Some(&via)))
                        }
                    }
                    Some(other) => {
                        if let Node::Num(n) = &other
                            && !n.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                        {
                            self.note(
                                &item_path,
                                format!(
                                    "a YAML number, imported as {n:?}: quote it in the compose file if it was \
                                     written differently (1.10 is 1.1)"
                                ),
                            );
                        }
                        self.scalar(&other, &item_path).map(|v| EnvVar {
                            name: name.clone(),
                            value: Some(v),
                            value_from: None,
                        })
                    }
                }
            };
            if let Some(var) = var {
                if let Some(i) = env.iter().position(|e| e.name == var.name) {
                    self.warn(&item_path, format!("{name} is set twice: the last one wins, as in compose"));
                    env.remove(i);
                }
                env.push(var);
            }
        }
    }

    /// The `secretKeyRef` for a secret-looking variable, remembered for the summary.
    fn secret_ref(
        &mut self,
        service: &str,
        name: &str,
        path: &str,
        secrets: &mut Vec<SecretHint>,
        via: Option<&str>,
    ) -> EnvVar {
        let key = secret_key(name);
        let why = match via {
            Some(via) => format!("its value interpolates {via}, which looks secret"),
            None => "its name looks secret".to_owned(),
        };
        self.note(
            path,
            format!(
                "{why}: imported as secretKeyRef {service}/{key}, without its value; put the value in \
                 <--secrets-dir>/{service}/{key} on the controller's host"
            ),
        );
        secrets.retain(|s| s.variable != name);
        secrets.push(SecretHint { service: service.to_owned(), variable: name.to_owned(), key: key.clone() });
        EnvVar {
            name: name.to_owned(),
            value: None,
            value_from: Some(EnvVarSource { secret_key_ref: SecretKeySelector { name: service.to_owned(), key } }),
        }
    }

    fn env_file(&mut self, node: &Node, path: &str) {
        let mut files = Vec::new();
        let items: Vec<(Node, String)> = match node {
            Node::Seq(items) => items.iter().enumerate().map(|(i, n)| (n.clone(), format!("{path}[{i}]"))).collect(),
            other => vec![(other.clone(), path.to_owned())],
        };
        for (item, item_path) in items {
            let file = match &item {
                Node::Map(_) => item.get("path").and_then(|p| self.scalar(p, &item_path)),
                other => self.scalar(other, &item_path),
            };
            files.extend(file);
        }
        for file in files {
            let names = std::fs::read_to_string(self.dir.join(&file))
                .ok()
                .map(|text| parse_dotenv(&text, &|_| None).into_iter().map(|(k, _)| k).collect::<Vec<_>>());
            let listed = match names {
                Some(names) if !names.is_empty() => format!(" (it sets {})", names.join(", ")),
                Some(_) => String::new(),
                None => " (not found next to the compose file)".to_owned(),
            };
            self.warn(
                path,
                format!(
                    "env_file {file}: its values are not imported{listed}; add the variables this service needs \
                     under spec.env (secrets as valueFrom.secretKeyRef)"
                ),
            );
        }
    }

    fn ports(&mut self, node: &Node, path: &str, ports: &mut Vec<Port>) {
        let Node::Seq(items) = node else {
            if *node != Node::Null {
                self.warn(path, format!("expected a list, found {}: ignored", node.kind()));
            }
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let parsed = match item {
                Node::Map(_) => self.long_port(item, &item_path),
                _ => {
                    let Some(text) = self.scalar(item, &item_path) else { continue };
                    parse_short_port(&text)
                }
            };
            match parsed {
                Ok((parsed, notes)) => {
                    for note in notes {
                        self.warn(&item_path, note);
                    }
                    for port in parsed {
                        self.add_port(port, &item_path, ports);
                    }
                }
                Err(why) => self.warn(&item_path, format!("{why}: ignored")),
            }
        }
    }

    fn long_port(&mut self, node: &Node, path: &str) -> Result<(Vec<Port>, Vec<String>), String> {
        let mut target = None;
        let mut published = None;
        let mut host_ip = None;
        let mut protocol = None;
        for (key, value) in node.as_map().unwrap_or_default() {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "target" => target = self.scalar(value, &key_path),
                "published" => published = self.scalar(value, &key_path),
                "host_ip" => host_ip = self.scalar(value, &key_path),
                "protocol" => protocol = self.scalar(value, &key_path),
                "mode" => {}
                "name" | "app_protocol" => self.note(&key_path, "port metadata is not kept"),
                k if k.starts_with("x-") => {}
                other => self.warn(&key_path, format!("port option `{other}` is not supported: ignored")),
            }
        }
        let target = target.ok_or("a port without `target`")?;
        let mut short = String::new();
        if let Some(ip) = &host_ip {
            short.push_str(&if ip.contains(':') { format!("[{ip}]:") } else { format!("{ip}:") });
        }
        match &published {
            Some(p) => short.push_str(&format!("{p}:")),
            None if host_ip.is_some() => short.push(':'),
            None => {}
        }
        short.push_str(&target);
        if let Some(protocol) = &protocol {
            short.push_str(&format!("/{protocol}"));
        }
        parse_short_port(&short)
    }

    /// Adds a port unless the container port is already there (the manifests publish each
    /// container port once); a published one replaces an unpublished one.
    fn add_port(&mut self, port: Port, path: &str, ports: &mut Vec<Port>) {
        match ports.iter_mut().find(|p| p.container == port.container && p.udp == port.udp) {
            None => ports.push(port),
            Some(existing) if existing.host.is_none() => *existing = port,
            Some(_) if port.host.is_none() => {}
            Some(existing) => {
                let (container, host) = (existing.container, existing.host.unwrap_or_default());
                self.warn(
                    path,
                    format!(
                        "container port {container} is already published (on host port {host}); a manifest \
                         publishes each container port once: ignored"
                    ),
                );
            }
        }
    }

    fn expose(&mut self, node: &Node, path: &str, ports: &mut Vec<Port>) {
        for (i, text) in self.strings(node, path).into_iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match parse_short_port(&text) {
                Ok((parsed, _)) if parsed.iter().all(|p| p.host.is_none()) => {
                    for port in parsed {
                        self.add_port(port, &item_path, ports);
                    }
                }
                Ok(_) => self.warn(&item_path, format!("expose {text:?} names a host port: ignored")),
                Err(why) => self.warn(&item_path, format!("{why}: ignored")),
            }
        }
        // Compose publishes `ports: ["8000"]` on a random host port; `expose` never publishes.
    }

    fn volumes(&mut self, node: &Node, path: &str, service: &str, mounts: &mut Vec<Mount>) {
        let Node::Seq(items) = node else {
            if *node != Node::Null {
                self.warn(path, format!("expected a list, found {}: ignored", node.kind()));
            }
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let volume = match item {
                Node::Map(_) => self.long_volume(item, &item_path),
                _ => match self.scalar(item, &item_path) {
                    Some(text) => parse_short_volume(&text),
                    None => continue,
                },
            };
            match volume {
                Ok(VolumeRef::Named { source, target, read_only, ignored_modes }) => {
                    if !ignored_modes.is_empty() {
                        self.warn(
                            &item_path,
                            format!("mount options {} are not supported: ignored", ignored_modes.join(",")),
                        );
                    }
                    let declared = self.volumes.contains_key(&source);
                    let name = self.declare_volume(&source);
                    if !declared {
                        self.warn(
                            &item_path,
                            format!(
                                "volume {source:?} is not declared under the top-level `volumes`: declared as {name:?}"
                            ),
                        );
                    }
                    if let Some(existing) = mounts.iter().position(|m| m.path == target) {
                        self.warn(&item_path, format!("{target} is mounted twice: the last one wins"));
                        mounts.remove(existing);
                    }
                    mounts.push(Mount { volume: name, path: target, read_only });
                }
                Ok(VolumeRef::Bind { source, target }) => {
                    let message = self.bind_message(service, &source, &target);
                    self.warn(&item_path, message);
                }
                Ok(VolumeRef::Anonymous { target }) => self.warn(
                    &item_path,
                    format!(
                        "anonymous volume at {target} is not supported: name it (e.g. `{service}-data:{target}`) \
                         and declare it under the top-level `volumes`"
                    ),
                ),
                Ok(VolumeRef::Other { kind, target }) => {
                    self.warn(&item_path, format!("{kind} mount at {target} is not supported: ignored"))
                }
                Err(why) => self.warn(&item_path, format!("{why}: ignored")),
            }
        }
    }

    fn long_volume(&mut self, node: &Node, path: &str) -> Result<VolumeRef, String> {
        let mut kind = "volume".to_owned();
        let mut source = None;
        let mut target = None;
        let mut read_only = false;
        for (key, value) in node.as_map().unwrap_or_default() {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "type" => kind = self.scalar(value, &key_path).unwrap_or(kind),
                "source" => source = self.scalar(value, &key_path),
                "target" => target = self.scalar(value, &key_path),
                "read_only" => read_only = self.boolean(value, &key_path).unwrap_or(false),
                "bind" | "tmpfs" | "consistency" => {}
                k if k.starts_with("x-") => {}
                other => self.warn(&key_path, format!("mount option `{other}` is not supported: ignored")),
            }
        }
        let target = target.ok_or("a mount without `target`")?;
        Ok(match (kind.as_str(), source) {
            ("volume", Some(source)) => VolumeRef::Named { source, target, read_only, ignored_modes: Vec::new() },
            ("volume", None) => VolumeRef::Anonymous { target },
            ("bind", Some(source)) => VolumeRef::Bind { source, target },
            (kind, _) => VolumeRef::Other { kind: kind.to_owned(), target },
        })
    }

    /// Why a bind mount is not imported, and what to use instead: `files` for a config file,
    /// a named volume for data.
    fn bind_message(&self, service: &str, source: &str, target: &str) -> String {
        let host = match source.strip_prefix("~/") {
            Some(rest) => {
                std::env::var_os("HOME").map_or_else(|| PathBuf::from(source), |h| PathBuf::from(h).join(rest))
            }
            None => self.dir.join(source),
        };
        let base =
            Path::new(target).file_name().map_or_else(|| "config".to_owned(), |n| n.to_string_lossy().into_owned());
        let files = format!("`files: [{{path: {target}, source: files/{service}/{base}}}]`");
        let lead = format!("bind mount {source}:{target} is not supported (the controller uses no host paths)");
        if host.is_file() {
            format!("{lead}: copy the file into the manifests folder as files/{service}/{base} and add {files}")
        } else if host.is_dir() {
            format!(
                "{lead}: keep data in a named volume, and put config files in the manifests folder under `files` \
                 (one entry per file, e.g. {files})"
            )
        } else {
            format!("{lead}: for a config file (e.g. a Caddyfile) use {files}; for data, a named volume")
        }
    }

    fn service_networks(&mut self, node: &Node, path: &str, networks: &mut Vec<String>) {
        let names: Vec<(String, String)> = match node {
            Node::Seq(_) => {
                self.strings(node, path).into_iter().enumerate().map(|(i, n)| (n, format!("{path}[{i}]"))).collect()
            }
            Node::Map(entries) => {
                let mut names = Vec::new();
                for (name, config) in entries {
                    let entry_path = format!("{path}.{name}");
                    for (key, _) in config.as_map().unwrap_or_default() {
                        let message = if key == "aliases" {
                            "network aliases are not supported: the service is reachable by its name".to_owned()
                        } else {
                            format!("network option `{key}` is not supported: ignored")
                        };
                        self.warn(&format!("{entry_path}.{key}"), message);
                    }
                    names.push((name.clone(), entry_path));
                }
                names
            }
            Node::Null => Vec::new(),
            other => {
                self.warn(path, format!("expected a list or a mapping, found {}: ignored", other.kind()));
                Vec::new()
            }
        };
        for (compose_name, entry_path) in names {
            let declared = compose_name == "default" || self.networks.contains_key(&compose_name);
            let name = self.declare_network(&compose_name);
            if !declared {
                self.warn(
                    &entry_path,
                    format!(
                        "network {compose_name:?} is not declared under the top-level `networks`: declared as {name:?}"
                    ),
                );
            }
            if !networks.contains(&name) {
                networks.push(name);
            }
        }
    }

    fn service_ref(&self, compose_name: &str) -> String {
        self.services.get(compose_name).cloned().unwrap_or_else(|| compose_name.to_owned())
    }

    fn depends_on(&mut self, node: &Node, path: &str, deps: &mut Vec<String>) {
        let names: Vec<String> = match node {
            Node::Seq(_) => self.strings(node, path),
            Node::Map(entries) => {
                let mut names = Vec::new();
                for (name, config) in entries {
                    let entry_path = format!("{path}.{name}");
                    for (key, value) in config.as_map().unwrap_or_default() {
                        let key_path = format!("{entry_path}.{key}");
                        match key.as_str() {
                            "condition" => match self.scalar(value, &key_path).as_deref() {
                                Some("service_started" | "service_healthy") | None => {}
                                Some("service_completed_successfully") => self.warn(
                                    &key_path,
                                    "one-shot services are not supported: the controller keeps every service \
                                     running, so it waits for this one to be ready instead of completed",
                                ),
                                Some(other) => self.warn(&key_path, format!("unknown condition {other:?}: ignored")),
                            },
                            "required" if self.boolean(value, &key_path) != Some(false) => {}
                            "required" => self.note(&key_path, "an optional dependency is imported as a dependency"),
                            "restart" => self.note(&key_path, "ignored: dependents are not restarted with it"),
                            k if k.starts_with("x-") => {}
                            other => self.warn(&key_path, format!("`{other}` is not supported: ignored")),
                        }
                    }
                    names.push(name.clone());
                }
                names
            }
            Node::Null => Vec::new(),
            other => {
                self.warn(path, format!("expected a list or a mapping, found {}: ignored", other.kind()));
                Vec::new()
            }
        };
        for name in names {
            let name = self.service_ref(&name);
            if !deps.contains(&name) {
                deps.push(name);
            }
        }
    }

    fn links(&mut self, node: &Node, path: &str, deps: &mut Vec<String>) {
        for (i, link) in self.strings(node, path).into_iter().enumerate() {
            let (service, alias) = link.split_once(':').unwrap_or((&link, ""));
            let name = self.service_ref(service);
            let mut message = "legacy links: imported as dependsOn; services reach each other by name".to_owned();
            if !alias.is_empty() && alias != service {
                message.push_str(&format!(" (the alias {alias:?} is not kept)"));
            }
            self.note(&format!("{path}[{i}]"), message);
            if !deps.contains(&name) {
                deps.push(name);
            }
        }
    }

    fn healthcheck(&mut self, node: &Node, path: &str) -> Option<Health> {
        let Some(entries) = node.as_map() else {
            self.warn(path, format!("expected a mapping, found {}: ignored", node.kind()));
            return None;
        };
        let mut exec: Option<Vec<String>> = None;
        let mut disabled = false;
        let mut health = Health {
            exec: Vec::new(),
            interval: DOCKER_HEALTH_INTERVAL,
            timeout: DOCKER_HEALTH_TIMEOUT,
            retries: DOCKER_HEALTH_RETRIES,
            start_period: Duration::default(),
        };
        for (key, value) in entries {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "test" => match value {
                    Node::Seq(_) => {
                        let words = self.strings(value, &key_path);
                        match words.split_first() {
                            Some((first, rest)) if first == "CMD" && !rest.is_empty() => exec = Some(rest.to_vec()),
                            Some((first, rest)) if first == "CMD-SHELL" && !rest.is_empty() => {
                                exec = Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.join(" ")]);
                            }
                            Some((first, _)) if first == "NONE" => disabled = true,
                            _ => self.warn(&key_path, "expected [CMD, ...], [CMD-SHELL, command] or [NONE]: ignored"),
                        }
                    }
                    _ => match self.scalar(value, &key_path) {
                        Some(command) if !command.trim().is_empty() => {
                            exec = Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), command]);
                        }
                        _ => disabled = true,
                    },
                },
                "interval" => health.interval = self.duration(value, &key_path).unwrap_or(health.interval),
                "timeout" => health.timeout = self.duration(value, &key_path).unwrap_or(health.timeout),
                "start_period" => health.start_period = self.duration(value, &key_path).unwrap_or_default(),
                "retries" => health.retries = self.count(value, &key_path).unwrap_or(health.retries),
                "disable" => disabled = self.boolean(value, &key_path).unwrap_or(false),
                "start_interval" => self.warn(&key_path, "not supported: checks run every `interval` from the start"),
                k if k.starts_with("x-") => {}
                other => self.warn(&key_path, format!("`{other}` is not supported: ignored")),
            }
        }
        if disabled {
            self.note(
                path,
                "disabled: the Deployment gets no healthCheck (an image's own HEALTHCHECK, if any, still applies)",
            );
            return None;
        }
        let Some(exec) = exec else {
            self.warn(
                path,
                "a healthcheck without `test` (it tunes the image's HEALTHCHECK): not imported; the image's own \
                 check applies with its own timing",
            );
            return None;
        };
        // Zero means "Docker's default" in compose; the manifests require positive values.
        if health.interval.get().is_zero() {
            health.interval = DOCKER_HEALTH_INTERVAL;
        }
        if health.timeout.get().is_zero() {
            health.timeout = DOCKER_HEALTH_TIMEOUT;
        }
        if health.retries == 0 {
            health.retries = DOCKER_HEALTH_RETRIES;
        }
        health.exec = exec;
        Some(health)
    }

    fn deploy(&mut self, node: &Node, path: &str, spec: &mut Spec) {
        let Some(entries) = node.as_map() else {
            if *node != Node::Null {
                self.warn(path, format!("expected a mapping, found {}: ignored", node.kind()));
            }
            return;
        };
        for (key, value) in entries {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "replicas" => spec.replicas = self.count(value, &key_path).or(spec.replicas),
                "resources" => self.resources(value, &key_path, spec),
                "restart_policy" => self.note(
                    &key_path,
                    "ignored: the controller keeps every container running itself (it starts what stopped and \
                     replaces what died)",
                ),
                "update_config" => self.update_config(value, &key_path, spec),
                "rollback_config" => self.note(&key_path, "ignored: a rollback is a git revert of the manifests"),
                "mode" => match self.scalar(value, &key_path).as_deref() {
                    Some("replicated") | None => {}
                    Some("global") => self.note(&key_path, "global on one host is one container: use replicas: 1"),
                    Some(other) => self.warn(&key_path, format!("mode {other:?} is not supported: ignored")),
                },
                k if k.starts_with("x-") => {}
                other => self.warn(&key_path, format!("deploy.{other} is not supported: ignored")),
            }
        }
    }

    fn update_config(&mut self, node: &Node, path: &str, spec: &mut Spec) {
        for (key, value) in node.as_map().unwrap_or_default() {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "order" => match self.scalar(value, &key_path).as_deref() {
                    Some("stop-first") => {
                        spec.recreate = true;
                        self.note(&key_path, "stop-first: strategy Recreate");
                    }
                    Some("start-first") | None => {}
                    Some(other) => self.warn(&key_path, format!("unknown order {other:?}: ignored")),
                },
                k if k.starts_with("x-") => {}
                other => self.note(
                    &key_path,
                    format!(
                        "{other} is not kept: rollouts replace one replica at a time, each gated on its health \
                         (see progressDeadline and minReadySeconds)"
                    ),
                ),
            }
        }
    }

    fn resources(&mut self, node: &Node, path: &str, spec: &mut Spec) {
        for (key, value) in node.as_map().unwrap_or_default() {
            let key_path = format!("{path}.{key}");
            let reservations = match key.as_str() {
                "limits" => false,
                "reservations" => true,
                k if k.starts_with("x-") => continue,
                other => {
                    self.warn(&key_path, format!("`{other}` is not supported: ignored"));
                    continue;
                }
            };
            for (field, v) in value.as_map().unwrap_or_default() {
                let field_path = format!("{key_path}.{field}");
                match (reservations, field.as_str()) {
                    (false, "cpus") => spec.limits.cpus = self.cpus(v, &field_path).or(spec.limits.cpus),
                    (false, "memory") => spec.limits.memory = self.memory(v, &field_path).or(spec.limits.memory),
                    (true, "memory") => {
                        spec.reservations.memory = self.memory(v, &field_path).or(spec.reservations.memory);
                    }
                    (true, "cpus") => {
                        self.warn(&field_path, "CPU reservations are not supported (only a CPU limit): ignored")
                    }
                    (_, k) if k.starts_with("x-") => {}
                    (_, other) => self.warn(&field_path, format!("`{other}` is not supported: ignored")),
                }
            }
        }
    }

    fn labels(&mut self, node: &Node, path: &str, labels: &mut BTreeMap<String, String>) {
        let entries: Vec<(String, String, String)> = match node {
            Node::Map(map) => map
                .iter()
                .map(|(k, v)| {
                    let item_path = format!("{path}.{k}");
                    let value = self.scalar(v, &item_path).unwrap_or_default();
                    (k.clone(), value, item_path)
                })
                .collect(),
            Node::Seq(_) => self
                .strings(node, path)
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                    (k.to_owned(), v.to_owned(), format!("{path}[{i}]"))
                })
                .collect(),
            Node::Null => Vec::new(),
            other => {
                self.warn(path, format!("expected a list or a mapping, found {}: ignored", other.kind()));
                Vec::new()
            }
        };
        for (key, value, item_path) in entries {
            if key.starts_with(RESERVED_LABEL_PREFIX) {
                self.warn(
                    &item_path,
                    format!("label {key:?} uses the prefix {RESERVED_LABEL_PREFIX:?} the controller owns: dropped"),
                );
            } else {
                labels.insert(key, value);
            }
        }
    }
}

/// A `volumes` entry of a service.
#[derive(Debug, PartialEq, Eq)]
enum VolumeRef {
    Named { source: String, target: String, read_only: bool, ignored_modes: Vec<String> },
    Bind { source: String, target: String },
    Anonymous { target: String },
    Other { kind: String, target: String },
}

/// `SOURCE:TARGET[:MODE]` or `TARGET`. A source that is a path (`/`, `.`, `~` or containing
/// `/`) is a bind mount; anything else names a volume.
fn parse_short_volume(spec: &str) -> Result<VolumeRef, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => return Ok(VolumeRef::Anonymous { target: (*target).to_owned() }),
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(format!("cannot read the volume {spec:?}: expected SOURCE:TARGET[:MODE]")),
    };
    if source.is_empty() || target.is_empty() {
        return Err(format!("cannot read the volume {spec:?}: expected SOURCE:TARGET[:MODE]"));
    }
    let mut read_only = false;
    let mut ignored_modes = Vec::new();
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = true,
            "rw" | "consistent" | "cached" | "delegated" => {}
            other => ignored_modes.push(other.to_owned()),
        }
    }
    let is_path = source.starts_with(['/', '.', '~']) || source.contains(['/', '\\']);
    Ok(if is_path {
        VolumeRef::Bind { source: source.to_owned(), target: target.to_owned() }
    } else {
        VolumeRef::Named { source: source.to_owned(), target: target.to_owned(), read_only, ignored_modes }
    })
}

/// `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`, with port ranges (`8000-8001`) and IPv6
/// host addresses (`[::1]:80:80`). Returns the ports and warnings about what was approximated.
fn parse_short_port(spec: &str) -> Result<(Vec<Port>, Vec<String>), String> {
    let bad = || format!("cannot read the port {spec:?}: expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]");
    let (rest, protocol) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let udp = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => false,
        "udp" => true,
        other => return Err(format!("protocol {other:?} is not supported (TCP and UDP only)")),
    };
    let mut parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    parts.reverse();
    let (ip, host, container) = match parts.as_slice() {
        [container] => (None, None, *container),
        [host, container] => (None, Some(*host), *container),
        [ip, host, container] => (Some(ip.trim_start_matches('[').trim_end_matches(']')), Some(*host), *container),
        _ => return Err(bad()),
    };
    let mut notes = Vec::new();
    let containers = port_range(container).ok_or_else(bad)?;
    let hosts = match host.filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => Some(port_range(h).ok_or_else(bad)?),
    };
    let ip = ip.filter(|ip| !ip.is_empty()).map(str::to_owned);
    if let Some(ip) = &ip
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        return Err(format!("invalid host IP {ip:?} in the port {spec:?}"));
    }
    let mut ports = Vec::new();
    match hosts {
        None => {
            notes.push(format!(
                "compose publishes {spec:?} on a random host port; imported as a container port, reachable on the \
                 stack's networks only: add a hostPort to publish it"
            ));
            ports.extend(containers.iter().map(|&c| Port { container: c, host: None, host_ip: None, udp }));
        }
        Some(hosts) if hosts.len() == containers.len() => {
            for (&h, &c) in hosts.iter().zip(&containers) {
                ports.push(Port { container: c, host: Some(h), host_ip: ip.clone(), udp });
            }
        }
        Some(hosts) if containers.len() == 1 => {
            notes.push(format!(
                "compose picks a free host port in {}-{}; imported as host port {} (a manifest names one)",
                hosts[0],
                hosts[hosts.len() - 1],
                hosts[0]
            ));
            ports.push(Port { container: containers[0], host: Some(hosts[0]), host_ip: ip, udp });
        }
        Some(_) => return Err(format!("the port ranges of {spec:?} differ in length")),
    }
    Ok((ports, notes))
}

/// `8000` or `8000-8002`, 1-65535, at most 1024 ports.
fn port_range(text: &str) -> Option<Vec<u16>> {
    let parse = |t: &str| t.trim().parse::<u16>().ok().filter(|p| *p > 0);
    let (start, end) = match text.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(text)?;
            (p, p)
        }
    };
    (start <= end && end - start < 1024).then(|| (start..=end).collect())
}

// ---------------------------------------------------------------------------------------------
// Pure helpers.

/// Whether an environment variable's name says it holds a secret.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "ACCESS_KEY", "PRIVATE_KEY", "CREDENTIAL"]
        .iter()
        .any(|word| upper.contains(word))
        || upper.ends_with("_KEY")
}

/// The secret key for a variable: `MINIO_ROOT_PASSWORD` → `minio-root-password`.
fn secret_key(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// A DNS label made from a name: lowercase, runs of other characters as one `-`, at most 63.
fn dns_label(name: &str) -> String {
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
fn shell_split(text: &str) -> Result<Vec<String>, String> {
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
fn parse_go_duration(text: &str) -> Result<u128, String> {
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
fn parse_compose_bytes(text: &str) -> Result<u64, String> {
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

// ---------------------------------------------------------------------------------------------
// Output.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentOut {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: SpecOut,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpecOut {
    image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<FlowSeq<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<FlowSeq<Vec<String>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<FlowMap<EnvVar>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<FlowMap<PortOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    networks: Option<FlowSeq<Vec<String>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volume_mounts: Vec<FlowMap<MountOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_check: Option<HealthOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    depends_on: Option<FlowSeq<Vec<String>>>,
    strategy: FlowMap<Strategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<ResourcesOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    init: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    read_only_root_filesystem: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_grace_period: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_pull_policy: Option<ImagePullPolicy>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PortOut {
    container_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_port: Option<u16>,
    #[serde(rename = "hostIP", skip_serializing_if = "Option::is_none")]
    host_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<Protocol>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MountOut {
    name: String,
    mount_path: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    read_only: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthOut {
    exec: FlowSeq<Vec<String>>,
    interval: Duration,
    timeout: Duration,
    retries: u32,
    start_period: Duration,
}

#[derive(Serialize)]
struct ResourcesOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<FlowMap<ResourceLimits>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reservations: Option<FlowMap<ResourceReservations>>,
}

fn deployment_out(service: &Service) -> DeploymentOut {
    let s = &service.spec;
    let resources =
        (s.limits != ResourceLimits::default() || s.reservations != ResourceReservations::default()).then(|| {
            ResourcesOut {
                limits: (s.limits != ResourceLimits::default()).then(|| FlowMap(s.limits.clone())),
                reservations: (s.reservations != ResourceReservations::default())
                    .then(|| FlowMap(s.reservations.clone())),
            }
        });
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| FlowSeq(v.clone()));
    DeploymentOut {
        api_version: API_VERSION,
        kind: "Deployment",
        metadata: ObjectMeta { name: service.name.clone(), ..ObjectMeta::default() },
        spec: SpecOut {
            image: s.image.clone(),
            replicas: s.replicas.filter(|r| *r != 1),
            command: s.command.clone().map(FlowSeq),
            args: s.args.clone().map(FlowSeq),
            env: s.env.iter().cloned().map(FlowMap).collect(),
            ports: s
                .ports
                .iter()
                .map(|p| {
                    FlowMap(PortOut {
                        container_port: p.container,
                        host_port: p.host,
                        host_ip: p.host_ip.clone(),
                        protocol: p.udp.then_some(Protocol::Udp),
                    })
                })
                .collect(),
            networks: non_empty(&s.networks),
            volume_mounts: s
                .volume_mounts
                .iter()
                .map(|m| {
                    FlowMap(MountOut { name: m.volume.clone(), mount_path: m.path.clone(), read_only: m.read_only })
                })
                .collect(),
            health_check: s.health_check.as_ref().map(|h| HealthOut {
                exec: FlowSeq(h.exec.clone()),
                interval: h.interval,
                timeout: h.timeout,
                retries: h.retries,
                start_period: h.start_period,
            }),
            depends_on: non_empty(&s.depends_on),
            strategy: FlowMap(Strategy {
                kind: if s.recreate { StrategyType::Recreate } else { StrategyType::RollingUpdate },
            }),
            resources,
            user: s.user.clone(),
            init: s.init,
            read_only_root_filesystem: s.read_only,
            stop_grace_period: s.stop_grace_period,
            image_pull_policy: s.image_pull_policy,
            labels: s.labels.clone(),
        },
    }
}

/// A comment line: no line breaks or control characters can leak out of it.
fn comment(text: &str) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!("# {clean}\n")
}

/// The files of the import, in order: `stack.yaml`, then one per service.
fn render(import: &Import, shown: &str) -> anyhow::Result<Vec<(String, String)>> {
    let options = || serde_saphyr::ser_options! { prefer_block_scalars: false };
    let stack = Stack {
        api_version: API_VERSION.to_owned(),
        kind: "Stack".to_owned(),
        metadata: ObjectMeta { name: import.stack.clone(), ..ObjectMeta::default() },
        spec: StackSpec { networks: import.networks.clone(), volumes: import.volumes.clone(), env: Vec::new() },
    };
    let mut text = String::from("# yaml-language-server: $schema=../../crds/stack.schema.json\n");
    text.push_str(&comment(&format!("Imported from {shown} by `memectl import compose`.")));
    text.push_str(&serde_saphyr::to_string_with_options(&stack, options()).context("cannot serialize the Stack")?);
    let mut files = vec![("stack.yaml".to_owned(), text)];
    for service in &import.services {
        let mut text = String::from("# yaml-language-server: $schema=../../crds/deployment.schema.json\n");
        text.push_str(&comment(&format!(
            "Imported from {shown} (service {:?}) by `memectl import compose`.",
            service.compose_name
        )));
        if !service.secrets.is_empty() {
            text.push_str("# Secrets are not in git: put each value in a file on the controller's host:\n");
            for s in &service.secrets {
                text.push_str(&comment(&format!("  <--secrets-dir>/{}/{}   ({})", s.service, s.key, s.variable)));
            }
        }
        let body = serde_saphyr::to_string_with_options(&deployment_out(service), options())
            .with_context(|| format!("cannot serialize the Deployment {}", service.name))?;
        text.push_str(&body);
        files.push((service.file.clone(), text));
    }
    Ok(files)
}

/// Writes the files into `dir`, refusing (exit 1) to overwrite any unless `force`. Returns the
/// other manifests the folder already held.
fn write_files(dir: &Path, files: &[(String, String)], force: bool) -> anyhow::Result<Vec<String>> {
    let existing: Vec<&str> =
        files.iter().map(|(name, _)| name.as_str()).filter(|name| dir.join(name).exists()).collect();
    if !existing.is_empty() && !force {
        let (what, it) = if existing.len() == 1 { ("a file", "it") } else { ("files", "them") };
        return Err(CheckError(format!(
            "refusing to overwrite {what} in {}: {}; use --force to replace {it}",
            dir.display(),
            existing.join(", ")
        ))
        .into());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in files {
        let path = dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let mut file = options.open(&path).with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let ours: BTreeSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    let mut others: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| ManifestTree::is_manifest_path(n) && !ours.contains(n.as_str()) && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    others.sort();
    Ok(others)
}

/// The summary on stderr: what was imported, the secrets to create, the count of warnings and
/// what to do next.
fn summary(import: &Import, findings: &[Finding], shown: &str, dir: &Path, written: Option<&[String]>) {
    let names: Vec<&str> = import.services.iter().map(|s| s.name.as_str()).collect();
    let plural = if names.len() == 1 { "" } else { "s" };
    eprintln!();
    eprintln!(
        "imported {} service{plural} from {shown} into stack {:?}: {}",
        names.len(),
        import.stack,
        names.join(", ")
    );
    let shown_dir = dir.display().to_string();
    if let Some(others) = written {
        eprintln!(
            "wrote {shown_dir}/: stack.yaml, {}",
            import.services.iter().map(|s| s.file.as_str()).collect::<Vec<_>>().join(", ")
        );
        if !others.is_empty() {
            eprintln!(
                "warning: {shown_dir} also holds {}, not from this import: the controller loads every *.yaml of the \
                 folder; remove what is stale",
                others.join(", ")
            );
        }
    }
    let secrets: Vec<&SecretHint> = import.services.iter().flat_map(|s| &s.secrets).collect();
    if !secrets.is_empty() {
        eprintln!("secrets (values are never imported): create each file on the controller's host:");
        let width = secrets.iter().map(|s| s.service.len() + s.key.len()).max().unwrap_or(0);
        for s in secrets {
            let path = format!("{}/{}", s.service, s.key);
            eprintln!("  <--secrets-dir>/{path:<width$}   ({} of {})", s.variable, s.service, width = width + 1);
        }
    }
    let warnings = findings.iter().filter(|f| f.level == Level::Warning).count();
    let notes = findings.len() - warnings;
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    eprintln!(
        "{}, {} (above: what was not imported, or imported differently)",
        count(warnings, "warning"),
        count(notes, "note")
    );
    eprintln!("next steps:");
    if written.is_none() {
        eprintln!("  save the stream as manifests in a folder (e.g. {shown_dir}/), then:");
    }
    eprintln!("  1. review the warnings, and the manifests (`files` for config files, secrets above)");
    eprintln!("  2. memectl validate {shown_dir}");
    eprintln!("  3. git add {shown_dir} && git commit -m \"Import stack {} from {shown}\"", import.stack);
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

    #[test]
    fn ports_should_parse_the_short_syntax() {
        let one = |spec: &str| parse_short_port(spec).unwrap().0;
        let p = |container, host: Option<u16>, ip: Option<&str>, udp| Port {
            container,
            host,
            host_ip: ip.map(str::to_owned),
            udp,
        };
        assert_eq!(one("80:80"), vec![p(80, Some(80), None, false)]);
        assert_eq!(one("127.0.0.1:8080:80"), vec![p(80, Some(8080), Some("127.0.0.1"), false)]);
        assert_eq!(one("[::1]:8080:80"), vec![p(80, Some(8080), Some("::1"), false)]);
        assert_eq!(one("8000"), vec![p(8000, None, None, false)]);
        assert_eq!(one("53:53/udp"), vec![p(53, Some(53), None, true)]);
        assert_eq!(one("9000-9001:9000-9001").len(), 2);
        assert_eq!(parse_short_port("8000").unwrap().1.len(), 1, "random host port noted");
        for bad in ["", "x:80", "80:0", "1-2:1-3", "80/sctp", "1:2:3:4:5"] {
            assert!(parse_short_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volumes_should_tell_named_from_bind_mounts() {
        assert_eq!(
            parse_short_volume("redis_data:/data:ro").unwrap(),
            VolumeRef::Named {
                source: "redis_data".into(),
                target: "/data".into(),
                read_only: true,
                ignored_modes: Vec::new()
            }
        );
        assert_eq!(
            parse_short_volume("./Caddyfile:/etc/caddy/Caddyfile").unwrap(),
            VolumeRef::Bind { source: "./Caddyfile".into(), target: "/etc/caddy/Caddyfile".into() }
        );
        assert!(matches!(parse_short_volume("/var/run/docker.sock:/sock").unwrap(), VolumeRef::Bind { .. }));
        assert_eq!(parse_short_volume("/cache").unwrap(), VolumeRef::Anonymous { target: "/cache".into() });
        assert!(matches!(
            parse_short_volume("data:/d:nocopy").unwrap(),
            VolumeRef::Named { ignored_modes, .. } if ignored_modes == ["nocopy"]
        ));
    }

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
    fn secret_names_should_be_recognized() {
        for secret in
            ["MINIO_ROOT_PASSWORD", "MINIO_SECRET_KEY", "MINIO_ACCESS_KEY", "GITHUB_TOKEN", "API_KEY", "db_passwd"]
        {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in ["LOG_LEVEL", "MINIO_ROOT_USER", "KEYBOARD", "S3_BUCKET"] {
            assert!(!is_secret_name(plain), "{plain}");
        }
        assert_eq!(secret_key("MINIO_ROOT_PASSWORD"), "minio-root-password");
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

    #[test]
    fn node_should_keep_order_and_yaml_12_scalars() {
        let doc = parse_compose("services:\n  b: {image: x, flag: yes, n: 0755, f: 0.50}\n  a: {}\n", "c.yml").unwrap();
        let services = doc.root.get("services").unwrap().as_map().unwrap();
        assert_eq!(services.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        let b = &services[0].1;
        assert_eq!(b.get("flag"), Some(&Node::Str("yes".into())));
        assert_eq!(b.get("n"), Some(&Node::Str("0755".into())));
        assert_eq!(b.get("f"), Some(&Node::Num("0.5".into())));
        let err = parse_compose("services:\n  a:\n    image: x\n   bad: [\n", "c.yml").unwrap_err().to_string();
        assert!(err.starts_with("c.yml:"), "{err}");
        assert!(parse_compose("- a\n", "c.yml").is_err());
        assert!(parse_compose("name: x\n", "c.yml").is_err());
    }
}
