//! Source positions of YAML nodes: splits a file into its documents and indexes every node of
//! a document by its field path (`spec.env[1].name`), so that diagnostics can point at the line
//! and column of the field they are about.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, ScanError, Span};

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl Pos {
    /// The start of a file.
    pub const START: Self = Self { line: 1, column: 1 };

    fn of(span: &Span) -> Self {
        Self::from_marker(span.start.line(), span.start.col())
    }

    fn from_marker(line: usize, col: usize) -> Self {
        Self {
            line: u32::try_from(line.max(1)).unwrap_or(u32::MAX),
            column: u32::try_from(col.saturating_add(1)).unwrap_or(u32::MAX),
        }
    }
}

/// Where the key and the value of one node of a document are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    key: Option<Pos>,
    value: Pos,
    /// Byte range from the key (or the item's value) to the end of the value.
    bytes: (usize, usize),
    /// Byte range of the value alone, in the whole text that was split (never shifted).
    value_bytes: (usize, usize),
}

/// The positions of every node of one document, by field path. The root has the path `""`;
/// mapping entries add `.key` (the first one without the dot) and sequence items `[i]`.
#[derive(Clone, Debug, Default)]
pub struct PathIndex {
    entries: HashMap<String, Entry>,
    /// Paths in document order with their value position, for mapping a position back to a path.
    ordered: Vec<(Pos, String)>,
}

impl PathIndex {
    /// The position of the value at `path`, or of its nearest indexed ancestor (nodes reached
    /// through an alias are indexed at the alias). `None` only for an empty index.
    #[must_use]
    pub fn value_pos(&self, path: &str) -> Option<Pos> {
        self.lookup(path).map(|e| e.value)
    }

    /// The position of the key of `path` (the value's position for sequence items and the
    /// root), falling back to ancestors like [`Self::value_pos`].
    #[must_use]
    pub fn key_pos(&self, path: &str) -> Option<Pos> {
        self.lookup(path).map(|e| e.key.unwrap_or(e.value))
    }

    /// Whether `path` itself was written in the document.
    #[must_use]
    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    /// The deepest path whose key or value starts exactly at `pos`, else the last node that
    /// starts before it: how a parser's positioned error is given a field path.
    #[must_use]
    pub fn path_at(&self, pos: Pos) -> Option<&str> {
        let exact = self
            .entries
            .iter()
            .filter(|(_, e)| e.value == pos || e.key == Some(pos))
            .map(|(path, _)| path.as_str())
            .max_by_key(|path| path.len());
        exact.or_else(|| {
            self.ordered.iter().take_while(|(start, _)| *start <= pos).last().map(|(_, path)| path.as_str())
        })
    }

    /// The byte range of the entry at exactly `path`: its key (or, for sequence items, value)
    /// through the end of its value.
    #[must_use]
    pub fn byte_range(&self, path: &str) -> Option<(usize, usize)> {
        self.entries.get(path).map(|e| e.bytes)
    }

    /// The byte range of the value written at exactly `path`, as offsets into the whole text
    /// given to [`split_documents`] (not the document's text): what an in-place edit of that
    /// value (`memectl set image`) replaces. A quoted scalar's range includes its quotes.
    #[must_use]
    pub fn value_span(&self, path: &str) -> Option<(usize, usize)> {
        self.entries.get(path).map(|e| e.value_bytes)
    }

    fn lookup(&self, path: &str) -> Option<&Entry> {
        let mut path = path;
        loop {
            if let Some(entry) = self.entries.get(path) {
                return Some(entry);
            }
            if path.is_empty() {
                return None;
            }
            path = parent(path);
        }
    }

    fn insert(&mut self, path: String, key: Option<(Pos, usize)>, value: Pos, bytes: (usize, usize)) {
        self.ordered.push((value, path.clone()));
        let start = key.map_or(bytes.0, |(_, b)| b);
        self.entries.entry(path).or_insert(Entry {
            key: key.map(|(p, _)| p),
            value,
            bytes: (start, bytes.1),
            value_bytes: bytes,
        });
    }

    /// Makes byte ranges relative to a text that starts `shift` bytes later.
    fn shift_bytes(&mut self, shift: usize) {
        for e in self.entries.values_mut() {
            e.bytes = (e.bytes.0.saturating_sub(shift), e.bytes.1.saturating_sub(shift));
        }
    }

    /// Extends the entry at `path` to end at `end` (a collection's closing event).
    fn close(&mut self, path: &str, end: usize) {
        if let Some(e) = self.entries.get_mut(path) {
            e.bytes.1 = e.bytes.1.max(end);
            e.value_bytes.1 = e.value_bytes.1.max(end);
        }
    }
}

/// The parent of a field path: `spec.env[1].name` → `spec.env[1]` → `spec.env` → `spec` → ``.
#[must_use]
pub fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// One document of a YAML stream.
#[derive(Debug)]
pub struct DocumentSlice {
    /// The document's own text, from the start of its first line (columns before the document
    /// on that line are spaces), so a parser of this text alone reports the file's columns and
    /// the file's lines less [`Self::line_offset`]. Empty for an empty document.
    pub text: String,
    /// Lines of the file before [`Self::text`]: add it to a line reported for the text.
    pub line_offset: u32,
    /// Where the document's content starts.
    pub start: Pos,
    /// Whether the document holds no node but an empty scalar (`---` alone): skipped, as
    /// kubectl does.
    pub is_empty: bool,
    /// Node positions by field path.
    pub index: PathIndex,
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub pos: Pos,
    /// What it expected.
    pub message: String,
}

impl From<ScanError> for SyntaxError {
    fn from(e: ScanError) -> Self {
        let m = e.marker();
        Self { pos: Pos::from_marker(m.line(), m.col()), message: e.info() }
    }
}

/// The documents of a file, as far as they could be read.
#[derive(Debug, Default)]
pub struct Split {
    /// The documents before any error or limit.
    pub docs: Vec<DocumentSlice>,
    /// The syntax error that ended the stream.
    pub error: Option<SyntaxError>,
    /// Where the first document over the limit starts: the rest of the file was not read.
    pub over_limit: Option<Pos>,
}

enum Frame {
    Mapping { path: String, pending_key: Option<(String, Pos, usize)> },
    Sequence { path: String, next: usize },
}

impl Frame {
    fn path(&self) -> &str {
        match self {
            Self::Mapping { path, .. } | Self::Sequence { path, .. } => path,
        }
    }
}

/// Splits `text` into at most `max_documents` documents (empty ones count) and indexes each.
/// Documents before a syntax error (or the limit) are still returned.
///
/// Linear in the size of the file: each document's text is copied once, never padded with the
/// lines before it (a 640 KB file of 160,000 `---` lines once cost documents x lines, 12 GB).
#[must_use]
pub fn split_documents(text: &str, max_documents: usize) -> Split {
    let mut out = Split::default();
    let mut parser = Parser::new_from_str(text);
    let mut frames: Vec<Frame> = Vec::new();
    let mut index = PathIndex::default();
    let mut doc_start: Option<(usize, Pos)> = None;
    let mut prev_end = 0usize;
    let mut nodes = 0usize;
    let mut empty_scalar = false;
    // Newlines before `lines_counted`, advanced monotonically so counting stays linear.
    let mut lines = LineCounter::default();
    loop {
        let (event, span) = match parser.next_event() {
            None => return out,
            Some(Err(e)) => {
                out.error = Some(syntax_error(text, e));
                return out;
            }
            Some(Ok(item)) => item,
        };
        match event {
            Event::DocumentStart(..) => {
                if out.docs.len() >= max_documents {
                    out.over_limit = Some(Pos::of(&span));
                    return out;
                }
                doc_start = Some((span.start.byte_offset().unwrap_or(prev_end), Pos::of(&span)));
                index = PathIndex::default();
                frames.clear();
                nodes = 0;
                empty_scalar = false;
            }
            Event::DocumentEnd => {
                let end = span.end.byte_offset().unwrap_or(text.len()).min(text.len());
                if let Some((start, pos)) = doc_start.take() {
                    let is_empty = nodes == 1 && empty_scalar;
                    let (doc_text, line_offset, shift) = if is_empty {
                        (String::new(), 0, 0)
                    } else {
                        document_text(text, start, prev_end, end, &mut lines)
                    };
                    index.shift_bytes(shift);
                    out.docs.push(DocumentSlice {
                        text: doc_text,
                        line_offset,
                        start: pos,
                        is_empty,
                        index: std::mem::take(&mut index),
                    });
                }
                prev_end = end;
            }
            Event::Scalar(ref value, style, ..) => {
                nodes += 1;
                // An empty document is reported as a zero-width plain null scalar.
                empty_scalar =
                    style == serde_saphyr::granit_parser::ScalarStyle::Plain && span.start.index() == span.end.index();
                node(&mut frames, &mut index, &span, Some(value));
            }
            Event::Alias(_) | Event::UnresolvedAlias(_) => {
                nodes += 1;
                node(&mut frames, &mut index, &span, None);
            }
            Event::SequenceStart(..) => {
                nodes += 1;
                let path = node(&mut frames, &mut index, &span, None);
                frames.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingStart(..) => {
                nodes += 1;
                let path = node(&mut frames, &mut index, &span, None);
                frames.push(Frame::Mapping { path, pending_key: None });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = frames.pop() {
                    index.close(frame.path(), span.end.byte_offset().unwrap_or(0));
                }
            }
            _ => {}
        }
    }
}

/// A scanner error, placed where the user must look: for a tab, at the tab itself (the scanner
/// reports some at the start of the scalar the tab broke, lines earlier).
fn syntax_error(text: &str, e: ScanError) -> SyntaxError {
    let mut error = SyntaxError::from(e);
    if error.message.contains("tab") {
        let from = byte_of(text, error.pos);
        if text.as_bytes().get(from) != Some(&b'\t')
            && let Some(found) = text[from..].find('\t')
        {
            error.pos = pos_at(text, from + found);
        }
    }
    error
}

/// The byte offset of a position (its line's end when the column is past it).
fn byte_of(text: &str, pos: Pos) -> usize {
    let mut offset = 0;
    for _ in 1..pos.line {
        match text[offset..].find('\n') {
            Some(i) => offset += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    text[offset..line_end]
        .char_indices()
        .nth(pos.column.saturating_sub(1) as usize)
        .map_or(line_end, |(i, _)| offset + i)
}

/// The position of a byte offset.
fn pos_at(text: &str, offset: usize) -> Pos {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Pos {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(before[line_start..].chars().count() + 1).unwrap_or(u32::MAX),
    }
}

/// Counts newlines up to an offset, resuming where the last call stopped: documents come in
/// file order, so every byte is counted once.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    newlines: usize,
}

impl LineCounter {
    fn lines_before(&mut self, text: &str, offset: usize) -> usize {
        if offset >= self.offset {
            self.newlines += text.as_bytes()[self.offset..offset].iter().filter(|b| **b == b'\n').count();
        } else {
            self.newlines -= text.as_bytes()[offset..self.offset].iter().filter(|b| **b == b'\n').count();
        }
        self.offset = offset;
        self.newlines
    }
}

/// Records a node in value position (or a mapping key) and returns the node's path.
fn node(frames: &mut [Frame], index: &mut PathIndex, span: &Span, scalar: Option<&str>) -> String {
    let pos = Pos::of(span);
    let bytes = (span.start.byte_offset().unwrap_or(0), span.end.byte_offset().unwrap_or(0));
    match frames.last_mut() {
        None => {
            index.insert(String::new(), None, pos, bytes);
            String::new()
        }
        Some(Frame::Sequence { path, next }) => {
            let item = format!("{path}[{next}]");
            *next += 1;
            index.insert(item.clone(), None, pos, bytes);
            item
        }
        Some(Frame::Mapping { path, pending_key }) => match pending_key.take() {
            None => {
                // A key. Complex (non-scalar) keys get a placeholder name.
                let key = scalar.map_or_else(|| "?".to_owned(), str::to_owned);
                *pending_key = Some((key, pos, bytes.0));
                // The key itself is not a node of the value tree.
                String::new()
            }
            Some((key, key_pos, key_byte)) => {
                let child = if path.is_empty() { key } else { format!("{path}.{key}") };
                index.insert(child.clone(), Some((key_pos, key_byte)), pos, bytes);
                child
            }
        },
    }
}

/// The document text `text[start..end]`, from the start of its first line (columns before the
/// document on that line blanked with spaces), the number of lines before it, and by how many
/// bytes offsets into the file exceed offsets into that text.
fn document_text(
    text: &str,
    start: usize,
    prev_end: usize,
    end: usize,
    lines: &mut LineCounter,
) -> (String, u32, usize) {
    let start = start.min(end);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    // Keep the document's first line whole when nothing of the previous document is on it;
    // otherwise pad its columns with spaces.
    let (from, pad_cols) = if line_start >= prev_end || text[line_start..start].trim().is_empty() {
        (line_start, 0)
    } else {
        (start, text[line_start..start].chars().count())
    };
    let line_offset = u32::try_from(lines.lines_before(text, line_start)).unwrap_or(u32::MAX);
    let mut out = String::with_capacity(pad_cols + end - from);
    out.extend(std::iter::repeat_n(' ', pad_cols));
    out.push_str(&text[from..end]);
    (out, line_offset, from - pad_cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_should_map_paths_to_positions() {
        let text = "a: 1\nspec:\n  env:\n    - name: X\n      value: y\n";
        let Split { docs, error, .. } = split_documents(text, 10);
        assert!(error.is_none());
        assert_eq!(docs.len(), 1);
        let idx = &docs[0].index;
        assert_eq!(idx.value_pos("a"), Some(Pos { line: 1, column: 4 }));
        assert_eq!(idx.key_pos("spec.env[0].name"), Some(Pos { line: 4, column: 7 }));
        assert_eq!(idx.value_pos("spec.env[0].value"), Some(Pos { line: 5, column: 14 }));
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(idx.key_pos("spec.env[0].nope"), Some(Pos { line: 4, column: 7 }));
        assert_eq!(idx.path_at(Pos { line: 5, column: 14 }), Some("spec.env[0].value"));
    }

    #[test]
    fn split_should_keep_file_positions_for_later_documents() {
        let text = "a: 1\n---\nb: 2\n---\n---\nc: [x\n";
        let Split { docs, error, over_limit } = split_documents(text, 10);
        assert_eq!(docs.len(), 3);
        assert!(docs[2].is_empty);
        assert_eq!(docs[1].index.value_pos("b"), Some(Pos { line: 3, column: 4 }));
        // The text starts at the document's own line; the lines before it are an offset.
        assert!(docs[1].text.starts_with("---\nb: 2") || docs[1].text.starts_with("b: 2"), "{:?}", docs[1].text);
        assert_eq!(docs[1].line_offset + u32::from(docs[1].text.starts_with("---")), 2);
        let err = error.expect("unclosed flow sequence");
        assert_eq!(err.pos, Pos { line: 6, column: 4 });
        assert!(over_limit.is_none());
    }

    #[test]
    fn split_should_stop_at_the_document_limit() {
        let text = "---\n".repeat(10);
        let Split { docs, error, over_limit } = split_documents(&text, 4);
        assert_eq!(docs.len(), 4);
        assert!(error.is_none());
        assert_eq!(over_limit, Some(Pos { line: 5, column: 1 }));
    }

    #[test]
    fn split_should_report_a_tab_at_the_tab() {
        // The scanner reports this at the scalar `abc` (line 2); the tab is on line 3.
        let text = "a: 1\nuser: abc\n\tdef\n";
        let error = split_documents(text, 10).error.expect("a tab breaks the scalar");
        assert_eq!(error.pos, Pos { line: 3, column: 1 }, "{error:?}");
        assert!(error.message.contains("tab"), "{error:?}");
    }

    #[test]
    fn value_span_should_cover_the_scalar_as_written_in_the_whole_file() {
        let text = "a: 1\n---\nspec:\n  image: \"web:1\"   # pinned\n  b: 'x'\n  c: {image: web:2, n: 1}\n  d: plain value  \n";
        let Split { docs, error, .. } = split_documents(text, 10);
        assert!(error.is_none());
        let idx = &docs[1].index;
        let at = |path: &str| idx.value_span(path).map(|(s, e)| &text[s..e]);
        assert_eq!(at("spec.image"), Some("\"web:1\""));
        assert_eq!(at("spec.b"), Some("'x'"));
        assert_eq!(at("spec.c.image"), Some("web:2"));
        assert_eq!(at("spec.d"), Some("plain value"));
        assert_eq!(at("spec.nope"), None, "only paths written in the document");
        assert_eq!(docs[0].index.value_span("a").map(|(s, e)| &text[s..e]), Some("1"));
    }

    #[test]
    fn parent_should_strip_one_segment() {
        assert_eq!(parent("spec.env[1].name"), "spec.env[1]");
        assert_eq!(parent("spec.env[1]"), "spec.env");
        assert_eq!(parent("spec"), "");
    }
}
