//! Progress on stderr while a command waits (`run`, `run --backend aws`).
//!
//! On a terminal: one live status line, redrawn in place with a carriage
//! return and padding (no cursor escapes), cut to the terminal's width, and
//! cleared when the display finishes so the result starts on a clean line.
//! Anywhere else (a file, a pipe, CI logs): plain lines, one per change.
//! Colour only on a terminal, and never when `NO_COLOR` is set
//! (<https://no-color.org>): then the output holds no escape code at all.
//! Lines that must stay (a state change) go through [`Progress::println`],
//! which lifts the live line out of the way first.

use std::{collections::BTreeMap, io::IsTerminal};

use super::out::err_fmt;

/// Spinner frames of the live line (ASCII: one column each on any terminal).
const SPINNER: [char; 4] = ['|', '/', '-', '\\'];
/// Width assumed when the terminal does not say.
const DEFAULT_WIDTH: usize = 80;
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// Whether `NO_COLOR` asks for no colour (set and not empty).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing (`--quiet`).
    Quiet,
    /// One line per change.
    Plain,
    /// One line redrawn in place, `width` columns at most.
    Live { color: bool, width: usize },
}

impl Mode {
    /// Live on a terminal (but not `TERM=dumb`), else plain; quiet when asked.
    pub fn detect(quiet: bool) -> Mode {
        let stderr = std::io::stderr();
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        if quiet {
            Mode::Quiet
        } else if stderr.is_terminal() && !dumb {
            let width = rustix::termios::tcgetwinsize(&stderr).map_or(0, |w| usize::from(w.ws_col));
            let width = if width == 0 { DEFAULT_WIDTH } else { width };
            Mode::Live { color: !no_color(), width }
        } else {
            Mode::Plain
        }
    }
}

/// A progress display: rows of (label, text), e.g. ("square", "3/7 succeeded, ...").
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    rows: Vec<(String, String)>,
    /// Columns the live line covers now (0: nothing drawn).
    drawn: usize,
    frame: usize,
    started: std::time::Instant,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress { mode, rows: Vec::new(), drawn: 0, frame: 0, started: std::time::Instant::now() }
    }

    /// Whether the display is the live line (a terminal).
    pub fn is_live(&self) -> bool {
        matches!(self.mode, Mode::Live { .. })
    }

    /// Shows the current rows: plain prints each row whose text changed, live redraws.
    pub fn update(&mut self, rows: Vec<(String, String)>) {
        if self.mode == Mode::Plain {
            let before: BTreeMap<&str, &str> =
                self.rows.iter().map(|(l, t)| (l.as_str(), t.as_str())).collect();
            for (label, text) in &rows {
                if before.get(label.as_str()) != Some(&text.as_str()) {
                    err_fmt(format_args!("  {label:<14} {text}\n"));
                }
            }
        }
        let changed = rows != self.rows;
        self.rows = rows;
        if changed {
            self.draw();
        }
    }

    /// Moves the spinner (live only): the command is still waiting.
    pub fn tick(&mut self) {
        self.frame += 1;
        self.draw();
    }

    /// A line that stays, above the live line.
    pub fn println(&mut self, line: &str) {
        if self.mode == Mode::Quiet {
            return;
        }
        self.clear();
        err_fmt(format_args!("{line}\n"));
        self.draw();
    }

    /// Ends the display: the live line is cleared.
    pub fn finish(&mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        if self.drawn > 0 {
            err_fmt(format_args!("\r{:1$}\r", "", self.drawn));
            self.drawn = 0;
        }
    }

    fn draw(&mut self) {
        let Mode::Live { color, width } = self.mode else { return };
        if self.rows.is_empty() {
            return;
        }
        let head = format!("{} {}s", SPINNER[self.frame % SPINNER.len()], self.started.elapsed().as_secs());
        let (plain, styled) = live_line(&head, &self.rows, width.saturating_sub(1), color);
        let cols = plain.chars().count();
        // Padding covers what is left of a longer line drawn before.
        let pad = self.drawn.saturating_sub(cols);
        err_fmt(format_args!("\r{styled}{:pad$}", ""));
        self.drawn = cols;
    }
}

/// The live line, `head` then the rows, at most `max` columns: as printed
/// (`plain`), and with colour when `color` (bold labels, a failed count in red).
fn live_line(head: &str, rows: &[(String, String)], max: usize, color: bool) -> (String, String) {
    let mut plain = String::new();
    let mut styled = String::new();
    let mut push = |text: &str, style: Option<&str>, plain: &mut String| {
        let room = max.saturating_sub(plain.chars().count());
        let cut: String = text.chars().take(room).collect();
        plain.push_str(&cut);
        match style {
            Some(s) if color && !cut.is_empty() => styled.push_str(&format!("{s}{cut}{RESET}")),
            _ => styled.push_str(&cut),
        }
    };
    push(head, None, &mut plain);
    for (label, text) in rows {
        push(" | ", None, &mut plain);
        push(label, Some(BOLD), &mut plain);
        push(" ", None, &mut plain);
        let failed = text.contains(" failed") && !text.contains(" 0 failed");
        push(text, failed.then_some(RED), &mut plain);
    }
    (plain, styled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<(String, String)> {
        vec![("square".into(), "3/7 succeeded, 2 running, 1 failed".into()), ("cleanup".into(), "0/1".into())]
    }

    #[test]
    fn the_live_line_fits_the_width_and_colours_only_when_asked() {
        let (plain, styled) = live_line("| 3s", &rows(), 200, false);
        assert_eq!(plain, "| 3s | square 3/7 succeeded, 2 running, 1 failed | cleanup 0/1");
        assert_eq!(styled, plain, "no colour: no escape code");
        let (plain, styled) = live_line("| 3s", &rows(), 25, true);
        assert_eq!(plain, "| 3s | square 3/7 succeed");
        assert!(styled.contains("\x1b[1msquare\x1b[0m") && styled.contains(RED), "{styled:?}");
        let (_, calm) = live_line("|", &[("s".into(), "1/1 succeeded, 0 failed".into())], 80, true);
        assert!(!calm.contains(RED), "no failure, no red: {calm:?}");
    }

    #[test]
    fn plain_and_quiet_modes_keep_no_live_line() {
        for mode in [Mode::Plain, Mode::Quiet] {
            let mut p = Progress::new(mode);
            p.update(rows());
            p.tick();
            assert_eq!(p.drawn, 0, "{mode:?}");
        }
        let mut live = Progress::new(Mode::Live { color: false, width: 40 });
        live.update(rows());
        assert_eq!(live.drawn, 39, "cut to the width, one column spare");
        live.finish();
        assert_eq!(live.drawn, 0);
    }
}
