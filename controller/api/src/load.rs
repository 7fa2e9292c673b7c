//! Loading a manifests folder: which files are manifests, splitting them into documents,
//! deserializing each document into its kind, and turning every parser error into a
//! positioned [`Diagnostic`]. Semantic rules live in [`crate::validate`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::position::{PathIndex, Pos, Split, split_documents};
use crate::v1alpha1::{API_VERSION, Deployment, GROUP, Object, Stack};
use crate::validate;

/// Files larger than this are refused: manifests and config files are small, and the cap
/// keeps a stray binary from being read into memory whole.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// Documents read per revision, empty ones included; the rest is refused at file:line. A stack
/// is one Stack and one Deployment per service, and more than about a thousand services could
/// not share a network anyway (a Linux bridge holds at most 1024 ports). Without a bound, a
/// 640 KB file of 160,000 `---` lines was 160,000 documents to index.
pub const MAX_DOCUMENTS: usize = 1_000;

/// The files of a manifests folder, as read from disk or from a git tree: paths relative to
/// the folder (with `/` separators) and their contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestTree {
    /// How the folder is shown in diagnostics (`manifests/staging`).
    pub root: String,
    /// Relative path → content. Every file of the folder, manifests or not. Shared: a git tree
    /// that lists one blob many times holds its bytes once.
    pub files: BTreeMap<String, Arc<[u8]>>,
    /// Symbolic links found in the folder and not followed: the controller reads committed git
    /// objects, where a link is a path and not the file it names, so it skips them too.
    pub links: Vec<String>,
}

impl ManifestTree {
    /// An empty tree shown as `root`.
    #[must_use]
    pub fn new(root: impl Into<String>) -> Self {
        Self { root: root.into(), files: BTreeMap::new(), links: Vec::new() }
    }

    /// Adds a file.
    #[must_use]
    pub fn with_file(mut self, path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.into(), Arc::from(content.into()));
        self
    }

    /// Reads every regular file under `dir` (recursively; hidden entries are skipped). Symbolic
    /// links are not followed, as the controller does not follow them in git: they are listed
    /// in [`Self::links`].
    ///
    /// # Errors
    /// I/O errors, and files over [`MAX_FILE_BYTES`].
    pub fn read_dir(dir: &Path) -> std::io::Result<Self> {
        let mut tree = Self::new(dir.display().to_string().trim_end_matches('/'));
        let mut stack = vec![dir.to_path_buf()];
        while let Some(current) = stack.pop() {
            for entry in std::fs::read_dir(&current)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let path = entry.path();
                let kind = entry.file_type()?;
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_symlink() {
                    tree.links.push(rel);
                } else if kind.is_file() {
                    let len = entry.metadata()?.len();
                    if len > MAX_FILE_BYTES as u64 {
                        return Err(std::io::Error::other(format!(
                            "{}: {len} bytes is over the {MAX_FILE_BYTES}-byte limit for files in a manifests folder",
                            path.display()
                        )));
                    }
                    tree.files.insert(rel, Arc::from(std::fs::read(&path)?));
                }
            }
        }
        tree.links.sort();
        Ok(tree)
    }

    /// How a file of the tree is shown in diagnostics.
    #[must_use]
    pub fn display(&self, rel: &str) -> String {
        if self.root.is_empty() || self.root == "." { rel.to_owned() } else { format!("{}/{rel}", self.root) }
    }

    /// Whether a path names a manifest file (by extension).
    #[must_use]
    pub fn is_manifest_path(rel: &str) -> bool {
        rel.ends_with(".yaml") || rel.ends_with(".yml")
    }
}

/// Where an object was written: its file and its document's field positions.
#[derive(Clone, Debug)]
pub struct SourceDoc {
    /// Relative path of the file within the tree.
    pub file: String,
    /// How the file is shown in diagnostics.
    pub display: String,
    /// Field positions.
    pub index: PathIndex,
    /// Where the document starts.
    pub start: Pos,
    /// Lines of the file before the document's text: positions the parser reports for that
    /// text are this many lines short.
    pub line_offset: u32,
    /// Fields cut out of the document because they were already reported as malformed; the
    /// semantic rules say nothing more about them.
    pub cut: Vec<String>,
}

impl SourceDoc {
    /// An error about the field at `path` (positioned at its value).
    #[must_use]
    pub fn error_at_value(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let pos = self.index.value_pos(path).unwrap_or(self.start);
        Diagnostic::error(&self.display, pos, Some(path.to_owned()), message)
    }

    /// An error about the field at `path` (positioned at its key).
    #[must_use]
    pub fn error_at_key(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let pos = self.index.key_pos(path).unwrap_or(self.start);
        Diagnostic::error(&self.display, pos, Some(path.to_owned()), message)
    }

    /// `file:line:col` of the value at `path`, for "first defined at" notes.
    #[must_use]
    pub fn location_of(&self, path: &str) -> String {
        let pos = self.index.key_pos(path).unwrap_or(self.start);
        format!("{}:{}:{}", self.display, pos.line, pos.column)
    }
}

/// An object together with where it was written.
#[derive(Clone, Debug)]
pub struct Located<T> {
    /// The object.
    pub object: T,
    /// Its source.
    pub source: SourceDoc,
}

/// The result of parsing: the objects that deserialized, and the diagnostics of those that
/// did not.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Stacks, in file order.
    pub stacks: Vec<Located<Stack>>,
    /// Deployments, in file order.
    pub deployments: Vec<Located<Deployment>>,
    /// Parse errors.
    pub diagnostics: Diagnostics,
    /// Whether every document parsed: cross-reference rules that report something missing
    /// run only then, since a broken document may hold what looks missing.
    pub complete: bool,
    /// Number of manifest files read.
    pub manifest_files: usize,
    /// Where the first file that could not be read completely broke (a syntax error, a
    /// document that is not a manifest): the checks across files are skipped, and say so here.
    pub first_break: Option<(String, Pos)>,
    /// Errors about one file as seen from another (a manifest named as a `files` source): the
    /// semantic rules report them with the rest.
    pub cross_file: Vec<Diagnostic>,
}

/// A validated manifest set: one Stack and its Deployments, with the files they reference.
#[derive(Clone, Debug)]
pub struct ManifestSet {
    /// The stack.
    pub stack: Located<Stack>,
    /// The services, sorted by name.
    pub deployments: Vec<Located<Deployment>>,
    /// The tree the set was read from (display root and all files, including `files` sources).
    pub tree: ManifestTree,
    /// Warnings (the set was still accepted).
    pub warnings: Diagnostics,
}

impl ManifestSet {
    /// The Deployment named `name`.
    #[must_use]
    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.deployments.iter().map(|d| &d.object).find(|d| d.metadata.name == name)
    }

    /// The content of a `files` source, relative to the folder.
    #[must_use]
    pub fn file(&self, source: &str) -> Option<&[u8]> {
        self.tree.files.get(source).map(|bytes| &bytes[..])
    }
}

/// Parses and validates a manifests folder. Every error of the set is reported at once.
///
/// # Errors
/// All diagnostics (errors and warnings), sorted, when any is an error.
pub fn load(tree: &ManifestTree) -> Result<ManifestSet, Diagnostics> {
    let parsed = parse(tree);
    validate::validate(tree, parsed)
}

/// Parses every manifest file of the tree into objects, without semantic rules.
#[must_use]
pub fn parse(tree: &ManifestTree) -> Parsed {
    let mut parsed = Parsed { complete: true, ..Parsed::default() };
    // First pass: a YAML file another Deployment uses as a `files` source (a Prometheus config,
    // say) is content, not a manifest. Sources are only known after parsing, so parse all,
    // then drop what turns out to be a source — unless it is itself a manifest.
    let mut per_file: Vec<(String, Parsed, bool)> = Vec::new();
    // Documents left to read in this revision; `None` once the limit was reported: the files
    // after it are not read at all.
    let mut budget = Some(MAX_DOCUMENTS);
    for (rel, bytes) in tree.files.iter().filter(|(rel, _)| ManifestTree::is_manifest_path(rel)) {
        let mut one = Parsed { complete: true, ..Parsed::default() };
        let claims_api = parse_file(tree, rel, bytes, &mut budget, &mut one);
        per_file.push((rel.clone(), one, claims_api));
    }
    let manifests: std::collections::BTreeMap<&str, bool> =
        per_file.iter().map(|(rel, _, claims)| (rel.as_str(), *claims)).collect();
    let mut sources = std::collections::BTreeSet::new();
    let mut refused = Vec::new();
    for d in per_file.iter().flat_map(|(_, p, _)| &p.deployments) {
        for (i, f) in d.object.spec.files.iter().enumerate() {
            let source = normalize_source(&f.source);
            match manifests.get(source.as_str()) {
                // A manifest named as a source stays a manifest: dropping it would make the
                // objects in it (the Stack, say) silently disappear.
                Some(true) => refused.push(d.source.error_at_value(
                    &format!("spec.files[{i}].source"),
                    format!(
                        "source {:?} is a manifest (it declares apiVersion {API_VERSION}): a files source must be \
                         plain content; point at a copy outside the manifests, or name it other than *.yaml/*.yml",
                        f.source
                    ),
                )),
                Some(false) => {
                    sources.insert(source);
                }
                None => {}
            }
        }
    }
    for (rel, one, _) in per_file {
        if sources.contains(&rel) {
            continue;
        }
        parsed.manifest_files += 1;
        parsed.complete &= one.complete;
        if parsed.first_break.is_none() {
            parsed.first_break = one.first_break;
        }
        parsed.stacks.extend(one.stacks);
        parsed.deployments.extend(one.deployments);
        parsed.diagnostics.0.extend(one.diagnostics.0);
    }
    parsed.cross_file = refused;
    parsed
}

/// A `files` source as a tree path: `./a//b` → `a/b`.
#[must_use]
pub fn normalize_source(source: &str) -> String {
    source.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}

/// Only `apiVersion` and `kind`, read first to pick the type to deserialize into.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    api_version: Option<String>,
    kind: Option<String>,
}

/// Parses one file into `out`, spending the revision's document `budget`. Returns whether any
/// document of it declares our apiVersion (whether it is a manifest, even a broken one).
fn parse_file(tree: &ManifestTree, rel: &str, bytes: &[u8], budget: &mut Option<usize>, out: &mut Parsed) -> bool {
    let Some(left) = *budget else {
        out.complete = false;
        return false;
    };
    let display = tree.display(rel);
    let broke = |out: &mut Parsed, pos: Pos| {
        out.complete = false;
        out.first_break.get_or_insert_with(|| (display.clone(), pos));
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let pos = pos_of_byte(bytes, e.valid_up_to());
            out.diagnostics.0.push(Diagnostic::error(
                &display,
                pos,
                None,
                format!("not UTF-8 text (invalid byte at offset {}); manifests must be YAML", e.valid_up_to()),
            ));
            broke(out, pos);
            return false;
        }
    };
    if bytes.len() > MAX_FILE_BYTES {
        out.diagnostics.0.push(Diagnostic::error(
            &display,
            Pos::START,
            None,
            format!("file is {} bytes, over the {MAX_FILE_BYTES}-byte limit", bytes.len()),
        ));
        broke(out, Pos::START);
        return false;
    }
    let Split { docs, error, over_limit } = split_documents(text, left);
    *budget = Some(left - docs.len()).filter(|_| over_limit.is_none());
    if let Some(err) = error {
        out.diagnostics.0.push(Diagnostic::error(&display, err.pos, None, format!("YAML syntax: {}", err.message)));
        broke(out, err.pos);
    }
    if let Some(pos) = over_limit {
        out.diagnostics.0.push(Diagnostic::error(
            &display,
            pos,
            None,
            format!(
                "more than {MAX_DOCUMENTS} documents in {}: a manifests folder holds one Stack and one Deployment \
                 per service; this document, the rest of this file and the files after it are not read",
                tree.root
            ),
        ));
        broke(out, pos);
    }
    let mut claims_api = false;
    for doc in docs.into_iter().filter(|d| !d.is_empty) {
        let source = SourceDoc {
            file: rel.to_owned(),
            display: display.clone(),
            index: doc.index,
            start: doc.start,
            line_offset: doc.line_offset,
            cut: Vec::new(),
        };
        let (object, diagnostics, cut, ours) = parse_document(&doc.text, &source);
        claims_api |= ours;
        out.diagnostics.0.extend(diagnostics);
        let source = SourceDoc { cut, ..source };
        match object {
            Some(Object::Stack(object)) => out.stacks.push(Located { object, source }),
            Some(Object::Deployment(object)) => out.deployments.push(Located { object: *object, source }),
            None => broke(out, doc.start),
        }
    }
    claims_api
}

/// A document's object, the diagnostics found in it, the fields cut out, and whether it
/// declares our apiVersion. An object comes back even with diagnostics when the bad fields
/// could be cut out (see [`deserialize_all`]): the semantic rules then still run on the rest of
/// it, so one run reports every problem.
type DocumentResult = (Option<Object>, Vec<Diagnostic>, Vec<String>, bool);

fn parse_document(text: &str, source: &SourceDoc) -> DocumentResult {
    let meta: TypeMeta = match deserialize_all(text, source) {
        (Some(meta), _, _) => meta,
        (None, diagnostics, _) => {
            // TypeMeta has only optional fields: failing at the root means the document is not
            // a mapping at all.
            let shape_error = diagnostics.first().is_some_and(|d| d.path.is_none());
            if shape_error {
                let d = Diagnostic::error(
                    &source.display,
                    source.start,
                    None,
                    "expected a manifest: a mapping with apiVersion, kind, metadata and spec",
                );
                return (None, vec![d], Vec::new(), false);
            }
            return (None, diagnostics, Vec::new(), false);
        }
    };
    let ours = meta.api_version.as_deref().is_some_and(|v| v.starts_with(&format!("{GROUP}/")));
    let fail = |d: Diagnostic| (None, vec![d], Vec::new(), ours);
    match meta.api_version.as_deref() {
        None => return fail(source.error_at_value("", "missing required field `apiVersion` (memeit.pro/v1alpha1)")),
        Some(API_VERSION) => {}
        Some(other) => {
            return fail(
                source.error_at_value("apiVersion", format!("unknown apiVersion {other:?}: expected {API_VERSION:?}")),
            );
        }
    }
    match meta.kind.as_deref() {
        Some("Stack") => {
            let (object, diagnostics, cut) = deserialize_all(text, source);
            (object.map(Object::Stack), diagnostics, cut, ours)
        }
        Some("Deployment") => {
            let (object, diagnostics, cut) = deserialize_all(text, source);
            (object.map(|d| Object::Deployment(Box::new(d))), diagnostics, cut, ours)
        }
        Some(other) => {
            fail(source.error_at_value("kind", format!("unknown kind {other:?}: expected Stack or Deployment")))
        }
        None => fail(source.error_at_value("", "missing required field `kind` (Stack or Deployment)")),
    }
}

/// How many bad fields are cut out of one document before giving up.
const MAX_REPAIRS: usize = 32;

/// Deserializes a document, reporting every bad field rather than only the first: on an
/// error at a field, the field is blanked out of the text (spaces, newlines kept, so positions
/// do not move) and the document is parsed again. Errors caused only by a cut (the cut field
/// now missing or null) are not reported. Returns the object if what remains deserializes,
/// the diagnostics, and the paths that were cut.
fn deserialize_all<T: DeserializeOwned>(text: &str, source: &SourceDoc) -> (Option<T>, Vec<Diagnostic>, Vec<String>) {
    let mut text = text.to_owned();
    let mut diagnostics = Vec::new();
    let mut cut: Vec<String> = Vec::new();
    for _ in 0..MAX_REPAIRS {
        let error = match serde_saphyr::from_str_with_options::<T>(&text, yaml_options()) {
            Ok(value) => return (Some(value), diagnostics, cut),
            Err(e) => e,
        };
        let diagnostic = error_diagnostic(&error, source);
        let path = diagnostic.path.clone().unwrap_or_default();
        let caused_by_cut = cut.iter().any(|c| related(&path, c));
        if !caused_by_cut {
            diagnostics.push(diagnostic);
        }
        // A missing field cannot be cut out; nor can an error we cannot place.
        let Some((start, end)) =
            source.index.byte_range(&path).filter(|_| !path.is_empty() && error.location().is_some())
        else {
            break;
        };
        if cut.contains(&path) || !blank(&mut text, start, end) {
            break;
        }
        cut.push(path);
    }
    (None, diagnostics, cut)
}

/// Whether one field path is the other or inside it.
#[must_use]
pub fn related(a: &str, b: &str) -> bool {
    let inside = |inner: &str, outer: &str| {
        inner == outer || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with(['.', '[']))
    };
    inside(a, b) || inside(b, a)
}

/// Replaces `text[start..end]` (and a block sequence item's `-`) with spaces, keeping line
/// breaks. Returns false when the range is not a valid cut.
fn blank(text: &mut String, start: usize, end: usize) -> bool {
    if start >= end || end > text.len() || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
        return false;
    }
    let mut from = start;
    let before = text[..start].trim_end_matches([' ', '\t']);
    if before.ends_with('-') {
        from = before.len() - 1;
    }
    let replaced: String = text[from..end].chars().map(|c| if c == '\n' || c == '\r' { c } else { ' ' }).collect();
    text.replace_range(from..end, &replaced);
    true
}

/// Parser options for manifests (and other small config YAML read the same way): strict YAML
/// 1.2 booleans and a budget against alias bombs and deep nesting: manifests are small, so
/// generous limits still stop a hostile document long before it costs memory.
#[must_use]
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        // A plain `8000` or `true` where text is expected is refused (quote it), as Kubernetes
        // and the JSON Schema do: the two must agree on every document.
        no_schema: true,
        // YAML 1.2 core: `1_000` is text, not a number (Python, editors and the JSON Schema agree).
        underscored_numbers_as_strings: true,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: 64,
            max_events: 1_000_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
        },
    }
}

/// Turns a parser error into a diagnostic with a field path and a plainer message.
fn error_diagnostic(e: &serde_saphyr::Error, source: &SourceDoc) -> Diagnostic {
    let raw = e.to_string();
    let message = strip_location(&raw);
    let message = message.as_str();
    let pos = e.location().filter(|l| l.line() > 0).map_or(source.start, |l| Pos {
        line: u32::try_from(l.line()).unwrap_or(u32::MAX).saturating_add(source.line_offset),
        column: u32::try_from(l.column()).unwrap_or(u32::MAX),
    });
    if let Some(field) = message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
        // Reported at the mapping that lacks the field: name the field's full path.
        let parent = mapping_path_at(&source.index, pos);
        let path = if parent.is_empty() { field.to_owned() } else { format!("{parent}.{field}") };
        // Point at the key of the mapping that lacks the field (`spec:`), as people read it.
        let at = if parent.is_empty() { source.start } else { source.index.key_pos(&parent).unwrap_or(pos) };
        return Diagnostic::error(&source.display, at, Some(path), "missing required field");
    }
    let path = source.index.path_at(pos).map(str::to_owned);
    Diagnostic::error(&source.display, pos, path, humanize(message))
}

/// The path of the mapping a "missing field" error is reported at. The parser reports it at
/// the mapping's first key (whose parent is the mapping) or, for an empty flow mapping, at the
/// mapping itself.
fn mapping_path_at(index: &PathIndex, pos: Pos) -> String {
    match index.path_at(pos) {
        Some(path) if index.key_pos(path) == Some(pos) && index.value_pos(path) != Some(pos) => {
            crate::position::parent(path).to_owned()
        }
        Some(path) => path.to_owned(),
        None => String::new(),
    }
}

/// `foo at line 3, column 7 (defined at line 2, column 5) ...` → `foo (through the anchor at
/// line 2, column 5)`: the position is reported separately; where an alias is involved, the
/// anchor's place is kept in the message.
fn strip_location(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or_default();
    let Some(i) = first_line.find(" at line ") else { return first_line.to_owned() };
    let mut out = first_line[..i].to_owned();
    if let Some(defined) = first_line[i..].split("(defined at ").nth(1).and_then(|d| d.split(')').next()) {
        out.push_str(&format!(" (through the anchor at {defined})"));
    }
    out
}

/// Plainer wording for the parser's terse messages.
fn humanize(message: &str) -> String {
    let range = |ty: &str| -> Option<&'static str> {
        Some(match ty {
            "u8" => "an integer from 0 to 255",
            "u16" => "an integer from 0 to 65535",
            "u32" => "an integer from 0 to 4294967295",
            "u64" => "a non-negative integer",
            "i32" | "i64" => "an integer",
            _ => return None,
        })
    };
    if let Some(ty) = message.strip_prefix("invalid ")
        && let Some(expected) = range(ty)
    {
        return format!("expected {expected}");
    }
    if let Some(key) = message.strip_prefix("duplicate mapping key: ").and_then(|m| m.split(',').next()) {
        return format!("duplicate key `{key}`");
    }
    if let Some(what) = message.strip_prefix("budget breached: ") {
        return format!("document exceeds the parser's budget ({what}): an alias bomb, or far larger than a manifest");
    }
    if let Some(value) = message.strip_prefix("The string value [").and_then(|m| m.strip_suffix("] must be quoted")) {
        let what = if matches!(value, "true" | "false" | "True" | "False" | "TRUE" | "FALSE") {
            "the boolean"
        } else if matches!(value, "null" | "Null" | "NULL" | "~") {
            "null"
        } else {
            "the number"
        };
        return format!(
            "expected text, found {what} {value}: quote it (\"{value}\") to mean the text, as Kubernetes and the JSON \
             Schema require"
        );
    }
    if message.starts_with("invalid boolean") {
        return "expected true or false (YAML 1.1 words such as yes, no, on and off are not booleans here)".to_owned();
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once("`, expected one of ")
        && let Some(best) = closest(field, expected.split(", "))
    {
        return format!("unknown field `{field}` (did you mean `{best}`?)");
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once("`, expected ")
    {
        return format!("unknown field `{field}`, expected {expected}");
    }
    message.to_owned()
}

/// The candidate closest to `word` by edit distance, if close enough to be a typo.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| c.trim_matches('`'))
        .map(|c| (strsim::levenshtein(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The line and column of a byte offset.
fn pos_of_byte(bytes: &[u8], offset: usize) -> Pos {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    Pos { line: u32::try_from(line).unwrap_or(u32::MAX), column: u32::try_from(column).unwrap_or(u32::MAX) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_should_suggest_close_fields() {
        assert_eq!(
            humanize("unknown field `imagee`, expected one of `image`, `replicas`"),
            "unknown field `imagee` (did you mean `image`?)"
        );
        assert_eq!(humanize("invalid u16"), "expected an integer from 0 to 65535");
    }

    #[test]
    fn pos_of_byte_should_count_lines_and_columns() {
        assert_eq!(pos_of_byte(b"ab\ncd", 4), Pos { line: 2, column: 2 });
    }
}
