//! The timeline of a run: an SVG (no script, no inline style, so the
//! Content-Security-Policy holds) with one band per stage in which each child
//! that started is a bar from its start to its stop (to now while it runs),
//! packed into lanes so that children running at once sit one above the
//! other. A bar links to the child's page. A stage with more than
//! [`BARS_LIMIT`] started children is drawn as one bar from its first start
//! to its last stop.

use std::fmt::Write;

use super::{
    page::esc,
    run_page::child_href,
    run_view::{RunView, Span},
};
use crate::run::timings::human_ms;

/// Children drawn one by one per stage.
pub const BARS_LIMIT: usize = 2000;
/// Lanes per stage at most (more children at once share the last lane).
const MAX_LANES: usize = 8;
const WIDTH: f64 = 1000.0;
const LABEL: f64 = 150.0;
const CHART: f64 = WIDTH - LABEL - 10.0;
const LANE: f64 = 10.0;

/// Lane of each span (sorted by start): the first lane free at its start.
pub fn lanes(spans: &[Span], now: i64) -> Vec<usize> {
    let mut ends: Vec<i64> = Vec::new();
    spans
        .iter()
        .map(|s| {
            let end = s.stopped_at.unwrap_or(now).max(s.started_at);
            let lane = match ends.iter().position(|e| *e <= s.started_at) {
                Some(lane) => lane,
                None if ends.len() < MAX_LANES => {
                    ends.push(end);
                    ends.len() - 1
                }
                None => MAX_LANES - 1,
            };
            ends[lane] = ends[lane].max(end);
            lane
        })
        .collect()
}

/// Draws the run's timeline into `b` (nothing before a child started).
pub fn svg(b: &mut String, v: &RunView) {
    let stages: Vec<(&str, Vec<Span>)> = v
        .stages
        .iter()
        .chain(v.finish.iter())
        .filter(|s| !s.spans.is_empty())
        .map(|s| {
            let mut spans = s.spans.clone();
            spans.sort_by_key(|sp| (sp.started_at, sp.index));
            (s.name.as_str(), spans)
        })
        .collect();
    let Some(t0) = stages.iter().flat_map(|(_, s)| s.iter().map(|sp| sp.started_at)).min() else { return };
    let t1 = stages
        .iter()
        .flat_map(|(_, s)| s.iter().map(|sp| sp.stopped_at.unwrap_or(v.now)))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let x = |t: i64| LABEL + (t - t0) as f64 / (t1 - t0) as f64 * CHART;
    let mut body = String::new();
    let mut y = 18.0;
    for (name, spans) in &stages {
        let top = y;
        let _ = write!(body, "<text x=0 y={:.0} class=tl-label>{}</text>", top + 8.0, esc(name));
        if spans.len() > BARS_LIMIT {
            let last = spans.iter().map(|s| s.stopped_at.unwrap_or(v.now)).max().unwrap_or(t0);
            let _ = write!(
                body,
                "<rect x={:.1} y={top:.0} width={:.1} height=8 class=t-span><title>{} ({} children): {}</title></rect>",
                x(spans[0].started_at),
                (x(last) - x(spans[0].started_at)).max(1.0),
                esc(name),
                spans.len(),
                human_ms(last - spans[0].started_at)
            );
            y += LANE + 8.0;
            continue;
        }
        let lane_of = lanes(spans, v.now);
        for (s, lane) in spans.iter().zip(&lane_of) {
            let end = s.stopped_at.unwrap_or(v.now).max(s.started_at);
            let _ = write!(
                body,
                "<a href=\"{}\"><rect x={:.1} y={:.0} width={:.1} height=8 class=\"t-{}\"><title>{}[{}] {} {}</title></rect></a>",
                child_href(&v.row.run_id, name, s.index),
                x(s.started_at),
                top + *lane as f64 * LANE,
                (x(end) - x(s.started_at)).max(1.0),
                s.status.as_str(),
                esc(name),
                s.index,
                s.status.as_str().to_lowercase(),
                human_ms(end - s.started_at)
            );
        }
        y += (lane_of.iter().max().copied().unwrap_or(0) + 1) as f64 * LANE + 8.0;
    }
    let _ = write!(
        b,
        "<h2>Timeline</h2><svg id=timeline viewBox=\"0 0 {WIDTH} {h:.0}\" width=\"100%\" role=img aria-label=\"when each stage's children ran\">\
         <text x={LABEL} y=10 class=tl-axis>0</text><text x={end:.0} y=10 class=tl-axis text-anchor=end>+{total}</text>{body}</svg>",
        h = y,
        end = LABEL + CHART,
        total = human_ms(t1 - t0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::JobStatus;

    fn span(index: u64, start: i64, stop: Option<i64>) -> Span {
        Span { index, status: JobStatus::Succeeded, started_at: start, stopped_at: stop }
    }

    #[test]
    fn children_running_at_once_get_their_own_lanes_and_a_free_lane_is_reused() {
        let spans = [span(0, 0, Some(10)), span(1, 0, Some(5)), span(2, 5, Some(8)), span(3, 10, None)];
        assert_eq!(lanes(&spans, 20), [0, 1, 1, 0]);
    }

    #[test]
    fn more_children_at_once_than_lanes_share_the_last_lane() {
        let spans: Vec<Span> = (0..12).map(|i| span(i, 0, Some(10))).collect();
        let l = lanes(&spans, 20);
        assert_eq!(l.iter().max(), Some(&(MAX_LANES - 1)));
        assert_eq!(l[..MAX_LANES], (0..MAX_LANES).collect::<Vec<_>>()[..]);
    }
}
