//! Where things go on screen. Pure geometry shared by the view (drawing)
//! and the state (paging by viewport height, mouse hit-testing), so both
//! always agree.

use ratatui::layout::Rect;

use super::{PaneLayout, Screen, State};

/// Below this the workbench shows "terminal too small".
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// Smallest grid cell worth drawing.
const MIN_CELL_W: u16 = 24;
const MIN_CELL_H: u16 = 6;
/// From this many columns on, the grid takes a fourth column of panes.
const WIDE: u16 = 200;

/// The screen's regions for an open run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Regions {
    /// Pane area, overview or timeline.
    pub main: Rect,
    /// Tab bar (tabs layout, unzoomed).
    pub tabs: Option<Rect>,
    pub sidebar: Option<Rect>,
    pub status: Rect,
    /// Visible panes: (pane index, outer rect).
    pub panes: Vec<(usize, Rect)>,
    /// The grid's one-line row of ended panes that have no cell in the
    /// ended band (`ended_band`), and where each one sits in it.
    pub shelf: Option<Rect>,
    pub shelved: Vec<TabSlot>,
    /// The grid's page when it holds more panes than fit at once.
    pub page: Option<Page>,
    /// Grid columns (for up/down focus moves).
    pub cols: usize,
}

pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

/// Width of the whisper sidebar for a screen `width` wide: wider while a
/// swarm's plan waits for review (its tasks are read there), but not while
/// the plan's YAML is edited in the main area.
fn sidebar_width(state: &State, width: u16) -> u16 {
    let editing = matches!(state.typing, Some(super::Typing::EditPlan(_)));
    if !editing && state.run.pending().any(|(_, p)| p.review.is_some()) {
        (width / 2).clamp(28, 72)
    } else {
        (width / 3).clamp(28, 44)
    }
}

/// Computes the regions of `area` for `state`.
pub fn regions(state: &State, area: Rect) -> Regions {
    let mut r = Regions {
        cols: 1,
        ..Regions::default()
    };
    if area.height < 2 {
        return r;
    }
    r.status = Rect::new(area.x, area.y + area.height - 1, area.width, 1);
    let mut body = Rect::new(area.x, area.y, area.width, area.height - 1);
    if state.sidebar && state.run_open {
        let w = sidebar_width(state, area.width).min(body.width);
        r.sidebar = Some(Rect::new(body.x + body.width - w, body.y, w, body.height));
        body.width -= w;
    }
    r.main = body;
    if state.screen != Screen::Panes || state.run.panes.is_empty() {
        return r;
    }
    let n = state.run.panes.len();
    let focus = state.focus_pane.min(n - 1);
    if state.zoom {
        r.panes.push((focus, body));
        return r;
    }
    match state.layout {
        PaneLayout::Tabs => {
            r.tabs = Some(Rect::new(body.x, body.y, body.width, 1));
            let pane = Rect::new(
                body.x,
                body.y + 1,
                body.width,
                body.height.saturating_sub(1),
            );
            r.panes.push((focus, pane));
        }
        PaneLayout::Grid => {
            let (grid, aside) = grid_panes(state);
            let mut body = body;
            if !aside.is_empty() {
                body = ended_band(state, body, &aside, &mut r);
            }
            let n = grid.len();
            let (cols, rows) = grid_shape(n, body.width, body.height);
            r.cols = cols;
            let cap = cols * rows;
            // Show the page of panes that holds the focused one.
            let at = grid.iter().position(|i| *i == focus).unwrap_or(0);
            let first = (at / cap) * cap;
            let shown = (n - first).min(cap);
            r.page = (shown < n).then_some(Page {
                first,
                shown,
                total: n,
            });
            let rows_used = shown.div_ceil(cols);
            let mut cells = Vec::with_capacity(shown);
            for k in 0..shown {
                let (c, row) = (k % cols, k / cols);
                // The last row's panes share its width.
                let in_row = if row + 1 == rows_used {
                    shown - row * cols
                } else {
                    cols
                };
                let cell = split(body, in_row, rows_used, c, row);
                cells.push((grid[first + k], cell));
            }
            // The grid's cells first (the page), then the ended band's.
            cells.append(&mut r.panes);
            r.panes = cells;
        }
    }
    r
}

/// The panes the grid lays out, in declaration order, and the ones moved
/// aside to the shelf under it: while the run executes, a pane whose step
/// has ended leaves its cell to the work still going on (not the focused
/// pane, which is being read, nor a swarm slot, which takes its next task
/// in a moment). Once nothing runs, every pane is back in the grid.
pub fn grid_panes(state: &State) -> (Vec<usize>, Vec<usize>) {
    let panes = &state.run.panes;
    let working = panes.iter().any(|p| !p.status.is_terminal());
    let all = (0..panes.len()).collect();
    if !state.run.active() || !working {
        return (all, Vec::new());
    }
    let focus = state.focus_pane.min(panes.len().saturating_sub(1));
    let (aside, grid): (Vec<usize>, Vec<usize>) = (0..panes.len()).partition(|i| {
        let p = &panes[*i];
        *i != focus && p.slot.is_none() && p.status.is_terminal()
    });
    (grid, aside)
}

/// Lays out the panes moved aside under the grid and returns what is
/// left for the grid. The ones that ended last get small cells side by side
/// in a band (their last lines stay readable); the others, and all of them
/// when the screen is too low for a band, get one line each in the shelf.
fn ended_band(state: &State, body: Rect, aside: &[usize], r: &mut Regions) -> Rect {
    let mut body = body;
    let mut shelved = aside.to_vec();
    let band_h = (body.height / 4).clamp(MIN_CELL_H, 10);
    if body.height > band_h + 2 * MIN_CELL_H {
        let fit = usize::from((body.width / MIN_CELL_W).max(1));
        // The panes that ended last are the ones most likely read next.
        let mut by_end = aside.to_vec();
        by_end.sort_by_key(|i| {
            std::cmp::Reverse(state.run.panes.get(*i).and_then(|p| p.finished_at))
        });
        let mut banded: Vec<usize> = by_end.into_iter().take(fit).collect();
        banded.sort_unstable();
        shelved.retain(|i| !banded.contains(i));
        let shelf_h = u16::from(!shelved.is_empty());
        body.height -= band_h + shelf_h;
        let band = Rect::new(body.x, body.y + body.height, body.width, band_h);
        for (k, i) in banded.iter().enumerate() {
            r.panes.push((*i, split(band, banded.len(), 1, k, 0)));
        }
    } else if body.height > MIN_CELL_H + 1 {
        body.height -= 1;
    } else {
        return body;
    }
    if !shelved.is_empty() {
        let shelf = Rect::new(body.x, r.main.y + r.main.height - 1, body.width, 1);
        r.shelved = shelf_slots(state, shelf, &shelved);
        r.shelf = Some(shelf);
    }
    body
}

/// Where each shelved pane's entry sits in `shelf` (after a " ended:"
/// label); entries that do not fit are left out (the view says how many).
fn shelf_slots(state: &State, shelf: Rect, aside: &[usize]) -> Vec<TabSlot> {
    let mut x = shelf.x + SHELF_LABEL.len() as u16;
    let end = shelf.x + shelf.width;
    let mut out = Vec::new();
    for i in aside {
        let Some(p) = state.run.panes.get(*i) else {
            continue;
        };
        // " n " + glyph + " label "
        let n = (i + 1).to_string().len() as u16;
        let w = n + 2 + 1 + crate::text::columns(&p.label()) as u16 + 1;
        // Room kept for " +N" while more follow.
        let room = if Some(i) == aside.last() {
            end
        } else {
            end.saturating_sub(4)
        };
        if x.saturating_add(w) > room {
            break;
        }
        out.push(TabSlot {
            pane: *i,
            x,
            width: w,
        });
        x = x.saturating_add(w);
    }
    out
}

/// What the shelf says before its entries.
pub const SHELF_LABEL: &str = " ended:";

/// The page of a grid that holds more panes than fit at once: the first
/// pane shown, how many are shown, and how many there are (positions in
/// the grid's panes, `grid_panes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub first: usize,
    pub shown: usize,
    pub total: usize,
}

/// The grid's page on screen, when not every pane fits (`None` in tabs,
/// zoomed, or when all panes are shown).
pub fn page(state: &State, area: Rect) -> Option<Page> {
    if state.layout != PaneLayout::Grid || state.zoom || state.screen != Screen::Panes {
        return None;
    }
    let r = regions(state, area);
    let (grid, _) = grid_panes(state);
    let total = grid.len();
    let first = grid
        .iter()
        .position(|i| Some(*i) == r.panes.first().map(|p| p.0))?;
    let shown = r.panes.len();
    (shown < total).then_some(Page {
        first,
        shown,
        total,
    })
}

/// Columns × rows for `n` panes (2, 4, 6, 9; on a wide screen 8 or 12),
/// shrunk to what fits.
pub fn grid_shape(n: usize, width: u16, height: u16) -> (usize, usize) {
    let wide = width >= WIDE;
    let (mut cols, mut rows) = match n {
        0 | 1 => (1, 1),
        2 => (2, 1),
        3 | 4 => (2, 2),
        5 | 6 => (3, 2),
        7 | 8 if wide => (4, 2),
        _ if wide => (4, 3),
        _ => (3, 3),
    };
    while cols > 1 && width / cols as u16 <= MIN_CELL_W {
        cols -= 1;
    }
    while rows > 1 && height / rows as u16 <= MIN_CELL_H {
        rows -= 1;
    }
    (cols, rows)
}

/// Cell (c, r) of `area` split into `cols` × `rows`, remainders to the last cell.
fn split(area: Rect, cols: usize, rows: usize, c: usize, r: usize) -> Rect {
    let (cols, rows) = (cols.max(1) as u16, rows.max(1) as u16);
    let (c, r) = (c as u16, r as u16);
    let w = area.width / cols;
    let h = area.height / rows;
    let x = area.x + c * w;
    let y = area.y + r * h;
    let width = if c + 1 == cols { area.width - c * w } else { w };
    let height = if r + 1 == rows {
        area.height - r * h
    } else {
        h
    };
    Rect::new(x, y, width, height)
}

/// A tab's place in the tab bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TabSlot {
    pub pane: usize,
    pub x: u16,
    pub width: u16,
}

/// The tabs drawn in `bar`: the index of the first one shown (the bar
/// scrolls so the focused tab is visible) and where each one sits. Widths
/// count the status glyph as one column.
pub fn tab_slots(state: &State, bar: Rect) -> (usize, Vec<TabSlot>) {
    let widths: Vec<u16> = state
        .run
        .panes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let attention = u16::from(state.run.needs_input(&p.step));
            // " n " + glyph + " label! " + "│"
            let n = (i + 1).to_string().len() as u16;
            let label = crate::text::columns(&p.label()) as u16;
            n + 2 + 1 + label + 2 + attention + 1
        })
        .collect();
    let focus = state.focus_pane.min(widths.len().saturating_sub(1));
    let mut first = 0;
    while first < focus
        && widths[first..=focus]
            .iter()
            .map(|w| u32::from(*w))
            .sum::<u32>()
            + 1
            > u32::from(bar.width)
    {
        first += 1;
    }
    let mut x = bar.x + u16::from(first > 0);
    let end = bar.x + bar.width;
    let mut out = Vec::new();
    for (i, w) in widths.iter().enumerate().skip(first) {
        // Whole tabs only (a cut one would hide its needs-input mark),
        // with a column kept for `›` while more follow.
        let room = if i + 1 < widths.len() {
            end.saturating_sub(1)
        } else {
            end
        };
        if x.saturating_add(*w) > room && !out.is_empty() {
            break;
        }
        out.push(TabSlot {
            pane: i,
            x,
            width: *w,
        });
        x = x.saturating_add(*w);
    }
    (first, out)
}

/// The text area inside a pane's border.
pub fn pane_body(outer: Rect) -> Rect {
    Rect::new(
        outer.x.saturating_add(1),
        outer.y.saturating_add(1),
        outer.width.saturating_sub(2),
        outer.height.saturating_sub(2),
    )
}

/// The body size of pane `i` on a screen of `state.size` (paging, clamping).
pub fn pane_viewport(state: &State, i: usize) -> (usize, usize) {
    let area = Rect::new(0, 0, state.size.0, state.size.1);
    let reg = regions(state, area);
    reg.panes
        .iter()
        .find(|(k, _)| *k == i)
        .map(|(_, r)| {
            let b = pane_body(*r);
            (b.width as usize, b.height as usize)
        })
        .unwrap_or((
            area.width.saturating_sub(2) as usize,
            area.height.saturating_sub(4) as usize,
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::state::sample::bench_state;

    #[test]
    fn grid_shapes_follow_the_pane_count_and_shrink_to_fit() {
        assert_eq!(grid_shape(1, 120, 36), (1, 1));
        assert_eq!(grid_shape(2, 120, 36), (2, 1));
        assert_eq!(grid_shape(4, 120, 36), (2, 2));
        assert_eq!(grid_shape(6, 120, 36), (3, 2));
        assert_eq!(grid_shape(9, 120, 36), (3, 3));
        assert_eq!(grid_shape(12, 120, 36), (3, 3));
        // 60×16 fits two 30-wide columns and two 8-high rows, not three.
        assert_eq!(grid_shape(9, 60, 16), (2, 2));
        assert_eq!(grid_shape(9, 40, 10), (1, 1));
        // A wide screen takes four columns.
        assert_eq!(grid_shape(8, 200, 50), (4, 2));
        assert_eq!(grid_shape(11, 200, 50), (4, 3));
    }

    /// Several agents at once open in the grid (the demo included) until
    /// the user picks a layout; one agent keeps the full-size tab.
    #[test]
    fn parallel_agents_open_in_the_grid_until_a_layout_is_chosen() {
        use crate::tui::keymap::Action;
        use crate::tui::state::PaneLayout;
        let s = crate::tui::state::sample::sample_state();
        assert_eq!(s.layout, PaneLayout::Grid);
        let one = bench_state(1, 1);
        assert_eq!(one.layout, PaneLayout::Tabs);
        let mut s = crate::tui::state::sample::sample_state();
        s.handle_action(Action::LayoutTabs);
        for r in crate::tui::state::sample::sample_events() {
            s.apply(&crate::protocol::Notice::Event(r));
        }
        assert_eq!(s.layout, PaneLayout::Tabs, "the user's choice stays");
    }

    #[test]
    fn grid_tiles_the_main_area_and_pages_to_the_focused_pane() {
        let mut s = bench_state(11, 1);
        s.layout = crate::tui::state::PaneLayout::Grid;
        let area = Rect::new(0, 0, 160, 40);
        let r = regions(&s, area);
        assert_eq!(r.panes.len(), 9);
        assert_eq!(r.cols, 3);
        // The cells cover the main area exactly.
        let cells: u32 = r
            .panes
            .iter()
            .map(|(_, c)| u32::from(c.width) * u32::from(c.height))
            .sum();
        assert_eq!(cells, u32::from(r.main.width) * u32::from(r.main.height));
        // Focusing pane 10 shows the second page (panes 9 and 10).
        s.focus_pane = 10;
        let r = regions(&s, area);
        let shown: Vec<usize> = r.panes.iter().map(|(i, _)| *i).collect();
        assert_eq!(shown, [9, 10]);
        // The last row's panes share its width.
        assert_eq!(r.panes[0].1.width + r.panes[1].1.width, r.main.width);
    }

    #[test]
    fn zoom_gives_the_focused_pane_the_whole_main_area() {
        let mut s = bench_state(4, 1);
        s.zoom = true;
        s.focus_pane = 2;
        let r = regions(&s, Rect::new(0, 0, 120, 36));
        assert_eq!(r.panes, vec![(2, r.main)]);
        assert_eq!(r.tabs, None);
    }
}
