//! Horizontal bars: one row per label, the label written above its bar
//! and the value at the bar's end, so that a long label (an error code
//! and its meaning) is never cut; the value axis under the rows.

use super::{TICKS, TOP, W, f, figure, scale};
use crate::dashboard::lang::Lang;
use maud::{Markup, html};

/// A horizontal bar chart's content: one bar per row, its label above it.
pub struct HorizontalChart<'a> {
    /// Unique on the page: the prefix of the chart's element ids.
    pub id: &'a str,
    /// What the chart shows (its accessible name and visible title).
    pub title: &'a str,
    /// The text alternative.
    pub desc: &'a str,
    /// The labels' column header in the table.
    pub label_head: &'a str,
    /// The value axis's name (and the values' column header).
    pub value_label: &'a str,
    /// The rows, top to bottom: label and value.
    pub points: &'a [(String, u64)],
}

/// A row's height, the left edge and the room kept right of the longest
/// bar for its value, in SVG user units.
const ROW: f64 = 40.0;
const H_LEFT: f64 = 8.0;
const H_VALUE: f64 = 56.0;

/// A horizontal chart, then its data table.
pub fn horizontal_chart(lang: Lang, chart: &HorizontalChart<'_>) -> Markup {
    let (top, step) = scale(chart.points.iter().map(|p| p.1).max().unwrap_or(0));
    let plot_w = W - H_LEFT - H_VALUE;
    let bottom = TOP + ROW * chart.points.len().max(1) as f64;
    let height = bottom + 44.0;
    let x = |v: u64| H_LEFT + plot_w * v as f64 / top as f64;
    let svg = html! {
        @for i in 0..=TICKS {
            @let value = i * step;
            line.chart__grid x1=(f(x(value))) y1=(TOP - 8.0) x2=(f(x(value))) y2=(f(bottom)) {}
            text x=(f(x(value))) y=(f(bottom + 16.0)) text-anchor="middle" { (value) }
        }
        line.chart__axis x1=(H_LEFT) y1=(f(bottom)) x2=(f(W - H_VALUE)) y2=(f(bottom)) {}
        text x=(f(H_LEFT + plot_w / 2.0)) y=(f(bottom + 36.0)) text-anchor="middle" { (chart.value_label) }
        @for (i, (label, v)) in chart.points.iter().enumerate() {
            @let y = TOP + i as f64 * ROW;
            text x=(H_LEFT) y=(f(y + 2.0)) { (label) }
            rect.chart__bar x=(H_LEFT) y=(f(y + 8.0)) width=(f(x(*v) - H_LEFT)) height="16" {
                title { (label) (lang.pick(" : ", ": ")) (v) }
            }
            text.chart__value x=(f(x(*v) + 6.0)) y=(f(y + 20.0)) { (v) }
        }
    };
    let rows = html! {
        @for (label, v) in chart.points {
            tr { td { (label) } td.num { (v) } }
        }
    };
    let head = [chart.label_head, chart.value_label];
    figure(
        lang,
        (chart.id, chart.title, chart.desc),
        height,
        svg,
        (&head, rows),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let rows = [("<i>910500</i>".to_owned(), 2)];
        let h = HorizontalChart {
            id: "h",
            title: "t",
            desc: "d",
            label_head: "Code",
            value_label: "Refus",
            points: &rows,
        };
        let svg = horizontal_chart(Lang::Fr, &h).into_string();
        assert!(
            !svg.contains("<i>") && svg.contains("&lt;i&gt;910500"),
            "{svg}"
        );
    }

    #[test]
    fn horizontal_bars_carry_their_label_and_value() {
        let rows = [
            ("910500 — année non couverte".to_owned(), 8),
            ("900901 — jeton invalide".to_owned(), 2),
        ];
        let h = HorizontalChart {
            id: "codes",
            title: "Refus par code",
            desc: "2 codes",
            label_head: "Code",
            value_label: "Refus",
            points: &rows,
        };
        let html = horizontal_chart(Lang::Fr, &h).into_string();
        // Top 8: the first bar spans the plot (656), the second a quarter.
        assert!(html.contains("width=\"656.0\" height=\"16\""), "{html}");
        assert!(html.contains("width=\"164.0\" height=\"16\""), "{html}");
        assert!(html.contains(">910500 — année non couverte</text>"));
        assert!(html.contains("class=\"chart__value\" x=\"670.0\" y=\"72.0\">8</text>"));
        assert!(html.contains("viewBox=\"0 0 720 176\""), "{html}");
        assert!(html.contains("<tr><td>900901 — jeton invalide</td><td class=\"num\">2</td></tr>"));
    }
}
