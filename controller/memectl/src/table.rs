//! The column aligner behind every table: kubectl's tabwriter settings (no borders, columns
//! padded by 3 spaces to the widest cell, at least 6 wide), measured in terminal columns
//! (`unicode-width`) with colour escapes not counted.

use unicode_width::UnicodeWidthStr;

/// Spaces between columns (kubectl's `tabwriterPadding`).
const PADDING: usize = 3;
/// The narrowest a column gets, padding included (kubectl's `tabwriterMinWidth`).
const MIN_WIDTH: usize = 6;

/// Rows of cells, the first being the header.
#[derive(Clone, Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with this header (write it in caps, as kubectl does).
    #[must_use]
    pub fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { rows: vec![header.into_iter().map(Into::into).collect()] }
    }

    /// Appends a row.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// Whether only the header is there.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.len() <= 1
    }

    /// The aligned text, one line per row, each ending in `\n`.
    #[must_use]
    pub fn render(&self) -> String {
        self.render_indented(0)
    }

    /// The aligned text with every line indented by `indent` spaces (for `describe`).
    #[must_use]
    pub fn render_indented(&self, indent: usize) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        // Like tabwriter, the last cell of a row is not part of a column: it is never padded.
        let mut widths = vec![MIN_WIDTH; columns.saturating_sub(1)];
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(display_width(cell) + PADDING);
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = " ".repeat(indent);
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if let Some(width) = widths.get(i) {
                    line.push_str(&" ".repeat(width.saturating_sub(display_width(cell))));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Terminal columns `text` takes: East Asian wide characters count 2, combining marks 0, and
/// ANSI escape sequences (colour) nothing.
#[must_use]
pub fn display_width(text: &str) -> usize {
    let mut width = 0;
    let mut rest = text;
    while let Some(start) = rest.find('\x1b') {
        width += rest[..start].width();
        let escape = &rest[start + 1..];
        rest = match escape.strip_prefix('[') {
            // A CSI sequence ends at its final byte, 0x40..=0x7e.
            Some(csi) => csi.find(|c: char| ('@'..='~').contains(&c)).map_or("", |end| &csi[end + 1..]),
            None => escape,
        };
    }
    width + rest.width()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_should_pad_columns_by_three_and_leave_the_last_unpadded() {
        let mut table = Table::new(["NAME", "READY", "STATUS"]);
        table.row(["backend", "2/2", "Synced"]);
        table.row(["redis", "1/1", ""]);
        assert_eq!(
            table.render(),
            "NAME      READY   STATUS\n\
             backend   2/2     Synced\n\
             redis     1/1\n"
        );
    }

    #[test]
    fn table_should_keep_columns_at_least_six_wide() {
        let mut table = Table::new(["ID", "X"]);
        table.row(["a", "b"]);
        assert_eq!(table.render(), "ID    X\na     b\n");
    }

    #[test]
    fn table_should_measure_unicode_in_terminal_columns() {
        let mut table = Table::new(["NAME", "NOTE"]);
        table.row(["日本語", "wide"]);
        table.row(["cafe\u{301}", "combining"]);
        table.row(["ok", "ascii"]);
        assert_eq!(
            table.render(),
            "NAME     NOTE\n\
             日本語   wide\n\
             cafe\u{301}     combining\n\
             ok       ascii\n"
        );
    }

    #[test]
    fn table_should_not_count_colour_escapes() {
        let mut table = Table::new(["STATUS", "AGE"]);
        table.row(["\x1b[32mSynced\x1b[0m", "5m"]);
        table.row(["Degraded", "1h"]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "\x1b[32mSynced\x1b[0m     5m");
        assert_eq!(lines[2], "Degraded   1h");
        assert_eq!(display_width("\x1b[1;31mab\x1b[0m"), 2);
        assert_eq!(display_width("\x1b["), 0);
    }

    #[test]
    fn table_should_indent_and_tolerate_ragged_rows() {
        let mut table = Table::new(["TYPE", "STATUS", "REASON"]);
        table.row(["Ready", "True"]);
        assert!(!table.is_empty());
        assert_eq!(table.render_indented(2), "  TYPE    STATUS   REASON\n  Ready   True\n");
        assert!(Table::new(["A"]).is_empty());
    }
}
