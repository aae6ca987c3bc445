//! Wrapping a line of text into rows of a given display width, the way a
//! pane shows it: wide characters (CJK, most emoji) take two columns and
//! zero-width ones (combining marks) none, rows break after whitespace when
//! a word would not fit, a word longer than a row is broken where the row
//! ends, and tabs become spaces up to the next multiple of [`TAB_WIDTH`].
//! No character is ever dropped: joining the rows gives the line back
//! (with its tabs expanded). Counting rows and drawing them use the same
//! walk, so a scroll offset counted here is the one drawn.

use unicode_width::UnicodeWidthChar;

/// Columns between tab stops.
pub const TAB_WIDTH: usize = 4;

/// A space a row never breaks at.
pub const NO_BREAK_SPACE: char = '\u{a0}';

/// The rows `text` takes at `width` columns (one empty row for empty text).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let cells = cells(text);
    let mut out = Vec::new();
    walk(&cells, width, |range| {
        out.push(cells[range].iter().map(|c| c.ch).collect());
    });
    out
}

/// How many rows `text` takes at `width` columns: `wrap(text, width).len()`.
pub fn rows(text: &str, width: usize) -> usize {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        // Printable ASCII, the common case: one column each.
        let cells: Vec<Cell> = text.chars().map(|ch| Cell { ch, width: 1 }).collect();
        let mut n = 0;
        walk(&cells, width, |_| n += 1);
        return n;
    }
    let cells = cells(text);
    let mut n = 0;
    walk(&cells, width, |_| n += 1);
    n
}

/// Display columns of `text` with tabs expanded (as one row).
pub fn columns(text: &str) -> usize {
    cells(text).iter().map(|c| c.width).sum()
}

/// `text` cut to at most `max` display columns, with `…` where it was cut
/// (tabs count as they are drawn: expanded).
pub fn clip(text: &str, max: usize) -> String {
    let cells = cells(text);
    if cells.iter().map(|c| c.width).sum::<usize>() <= max {
        return cells.iter().map(|c| c.ch).collect();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in &cells {
        // Keep a column for the ellipsis.
        if used + c.width + 1 > max {
            break;
        }
        used += c.width;
        out.push(c.ch);
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// `text` clipped to `width` display columns and padded with spaces to
/// exactly `width`: a table column that stays aligned whatever the
/// characters' widths (`format!("{:<28}")` pads by characters).
pub fn fit(text: &str, width: usize) -> String {
    let mut out = clip(text, width);
    let used = columns(&out);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
}

/// `wrap` of a line made of parts that each carry something (a style):
/// its rows, each as runs of characters of one part (neighbouring parts
/// that carry the same thing run together). Tabs are expanded by the
/// line's columns, as `wrap` does.
pub fn wrap_parts<S: Clone + PartialEq>(
    parts: &[(&str, S)],
    width: usize,
) -> Vec<Vec<(String, S)>> {
    let mut cells = Vec::new();
    let mut owner = Vec::new();
    let mut column = 0;
    for (i, (text, _)) in parts.iter().enumerate() {
        push_cells(text, &mut column, &mut cells);
        owner.resize(cells.len(), i);
    }
    let mut rows = Vec::new();
    walk(&cells, width, |range| {
        let mut row: Vec<(String, S)> = Vec::new();
        for i in range {
            let carried = &parts[owner[i]].1;
            match row.last_mut() {
                Some((text, s)) if s == carried => text.push(cells[i].ch),
                _ => row.push((cells[i].ch.to_string(), carried.clone())),
            }
        }
        rows.push(row);
    });
    rows
}

/// One character as drawn, with its width in columns.
#[derive(Clone, Copy)]
struct Cell {
    ch: char,
    width: usize,
}

/// The characters of `text` with their widths, tabs expanded to spaces.
fn cells(text: &str) -> Vec<Cell> {
    let mut out = Vec::with_capacity(text.len());
    push_cells(text, &mut 0, &mut out);
    out
}

/// Appends the cells of `text`, which starts at `column` of its line
/// (tab stops count from the line's start), and moves `column` on.
fn push_cells(text: &str, column: &mut usize, out: &mut Vec<Cell>) {
    for ch in text.chars() {
        if ch == '\t' {
            let spaces = TAB_WIDTH - *column % TAB_WIDTH;
            for _ in 0..spaces {
                out.push(Cell { ch: ' ', width: 1 });
            }
            *column += spaces;
            continue;
        }
        let width = ch.width().unwrap_or(0);
        out.push(Cell { ch, width });
        *column += width;
    }
}

/// Calls `row` with the range of cells of each row, in order.
fn walk(cells: &[Cell], width: usize, mut row: impl FnMut(std::ops::Range<usize>)) {
    if cells.is_empty() || width == 0 {
        row(0..cells.len());
        return;
    }
    let mut start = 0;
    let mut used = 0;
    // Where the row may break: just after the last whitespace in it.
    let mut after_space = None;
    let mut i = 0;
    while i < cells.len() {
        let cell = cells[i];
        if used + cell.width > width && i > start {
            let end = match after_space {
                Some(b) if b > start && b < i => b,
                // The row's only word is longer than the row.
                _ => i,
            };
            row(start..end);
            start = end;
            used = cells[start..i].iter().map(|c| c.width).sum();
            after_space = None;
            continue;
        }
        used += cell.width;
        // A no-break space keeps a mark with what it marks.
        if cell.ch.is_whitespace() && cell.ch != NO_BREAK_SPACE {
            after_space = Some(i + 1);
        }
        i += 1;
    }
    row(start..cells.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clip_counts_display_columns_and_marks_the_cut() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdefghij", 5), "abcd…");
        // 🚀 and 漢 take two columns each.
        assert_eq!(clip("a🚀b漢c", 6), "a🚀b…");
        assert_eq!(clip("漢漢漢", 4), "漢…");
        assert_eq!(clip("abc", 0), "");
        assert_eq!(columns(&clip("a\tb long tail", 6)), 6);
    }

    #[test]
    fn prose_breaks_between_words() {
        assert_eq!(
            wrap("The parser reads every line", 12),
            ["The parser ", "reads every ", "line"]
        );
    }

    #[test]
    fn a_word_longer_than_the_row_is_broken_where_the_row_ends() {
        assert_eq!(wrap("abcdefghij kl", 4), ["abcd", "efgh", "ij ", "kl"]);
    }

    #[test]
    fn wide_characters_take_two_columns_and_none_is_lost() {
        let rows = wrap("🚀, very long lines, and a URL", 10);
        assert_eq!(rows.concat(), "🚀, very long lines, and a URL");
        for r in &rows {
            assert!(columns(r) <= 10, "{r:?}");
        }
        assert_eq!(
            wrap("日本語のテキスト", 5),
            ["日本", "語の", "テキ", "スト"]
        );
    }

    #[test]
    fn fit_pads_and_clips_by_display_width() {
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(columns(&fit("日本語のラン名前", 9)), 9);
        assert_eq!(columns(&fit("🚀 x", 6)), 6);
        assert_eq!(fit("abcdef", 4), "abc…");
    }

    #[test]
    fn parts_wrap_as_their_text_does_and_keep_what_they_carry() {
        let parts = [("日本語の", 1), ("\tテキスト and more", 2)];
        let rows = wrap_parts(&parts, 7);
        let plain: Vec<String> = rows
            .iter()
            .map(|r| r.iter().map(|(t, _)| t.as_str()).collect())
            .collect();
        assert_eq!(plain, wrap("日本語の\tテキスト and more", 7));
        assert_eq!(rows[0], [("日本語".to_string(), 1)]);
        assert!(
            rows.iter()
                .flatten()
                .any(|(t, s)| t.contains('ト') && *s == 2)
        );
        for r in &plain {
            assert!(columns(r) <= 7, "{r:?}");
        }
    }

    #[test]
    fn tabs_become_spaces_to_the_next_stop() {
        assert_eq!(wrap("\tfn x() {", 40), ["    fn x() {"]);
        assert_eq!(wrap("ab\tc", 40), ["ab  c"]);
    }

    #[test]
    fn empty_text_is_one_empty_row() {
        assert_eq!(wrap("", 10), [""]);
        assert_eq!(rows("", 10), 1);
    }

    proptest! {
        /// Joining the rows gives the text back (tabs expanded); every row
        /// fits (a row of one character wider than the pane excepted);
        /// counting agrees with drawing.
        #[test]
        fn rows_keep_every_character_and_fit(
            text in "[a-z \\t😀日é\u{301}-]{0,80}",
            width in 1usize..30,
        ) {
            let rows_drawn = wrap(&text, width);
            let expanded: String = cells(&text).iter().map(|c| c.ch).collect();
            prop_assert_eq!(rows_drawn.concat(), expanded);
            prop_assert_eq!(rows(&text, width), rows_drawn.len());
            for r in &rows_drawn {
                prop_assert!(columns(r) <= width || r.chars().count() == 1 || columns(r) <= 2 && width == 1, "{:?} at {}", r, width);
            }
        }

        /// A line cut into parts anywhere wraps into the rows its text does.
        #[test]
        fn parts_wrap_into_the_rows_of_their_text(
            text in "[a-z \\t😀日é\u{301}-]{0,80}",
            cut in 0usize..80,
            width in 1usize..30,
        ) {
            let chars: Vec<char> = text.chars().collect();
            let cut = cut.min(chars.len());
            let (a, b): (String, String) = (chars[..cut].iter().collect(), chars[cut..].iter().collect());
            let rows = wrap_parts(&[(a.as_str(), 'a'), (b.as_str(), 'b')], width);
            let plain: Vec<String> = rows.iter().map(|r| r.iter().map(|(t, _)| t.as_str()).collect()).collect();
            prop_assert_eq!(plain, wrap(&text, width));
        }

        /// A clipped text fits its columns and starts as the text does.
        #[test]
        fn clip_fits_and_keeps_the_start(
            text in "[a-z \\t😀日é\u{301}-]{0,40}",
            max in 0usize..30,
        ) {
            let cut = clip(&text, max);
            prop_assert!(columns(&cut) <= max, "{:?} at {}", cut, max);
            let expanded: String = cells(&text).iter().map(|c| c.ch).collect();
            prop_assert!(expanded.starts_with(cut.trim_end_matches('…')));
        }
    }
}
