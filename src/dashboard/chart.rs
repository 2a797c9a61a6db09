//! Bar charts drawn on the server as SVG (no script, no library): labelled
//! axes (values on the vertical one, labels on the horizontal one), a
//! text alternative (`role="img"` named by its `<title>` and `<desc>`),
//! and the same data as a table behind a disclosure. Written through
//! maud, so every label is escaped; plotters would add a dependency for
//! the same few shapes.

use super::html::table;
use super::lang::Lang;
use super::messages::{ChartSummary, Msg};
use maud::{Markup, html};

/// A bar chart's content.
pub struct BarChart<'a> {
    /// Unique on the page: the prefix of the chart's element ids.
    pub id: &'a str,
    /// What the chart shows (its accessible name and visible title).
    pub title: &'a str,
    /// The horizontal axis's name (the labels' column in the table).
    pub x_label: &'a str,
    /// The vertical axis's name (the values' column in the table), and
    /// in lower case the unit of the text alternative.
    pub y_label: &'a str,
    /// The bars, left to right: label and value.
    pub points: &'a [(String, u64)],
}

/// The drawing's size and its margins, in SVG user units.
const W: f64 = 720.0;
const H: f64 = 280.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 32.0;
const BOTTOM: f64 = 56.0;
/// Gridlines above the zero line.
const TICKS: u64 = 4;
/// Labels written under the horizontal axis at most (the table has all).
const MAX_X_LABELS: usize = 8;

/// The chart, then its data table.
pub fn bar_chart(lang: Lang, chart: &BarChart<'_>) -> Markup {
    let (title_id, desc_id) = (format!("{}-title", chart.id), format!("{}-desc", chart.id));
    let data_id = format!("{}-data", chart.id);
    html! {
        div.chart #(chart.id) {
            svg role="img" aria-labelledby=(format!("{title_id} {desc_id}"))
                viewBox=(format!("0 0 {W} {H}")) focusable="false" {
                // SVG elements are not void in HTML: each one is closed.
                title #(title_id) { (chart.title) }
                desc #(desc_id) { (summary(lang, chart)) }
                text.chart__title x="0" y="14" { (chart.title) }
                (y_axis(chart))
                (bars(chart.points))
                (x_axis(chart))
            }
            details {
                summary #(data_id) { (lang.t(Msg::ChartData)) (lang.pick(" : ", ": ")) (chart.title) }
                (table(&data_id, &[chart.x_label, chart.y_label], html! {
                    @for (label, v) in chart.points {
                        tr { td { (label) } td.num { (v) } }
                    }
                }))
            }
        }
    }
}

/// The top of the vertical axis and its step: a round step (1, 2 or 5
/// times a power of ten) such that [`TICKS`] steps reach `max`.
pub fn scale(max: u64) -> (u64, u64) {
    let mut magnitude: u64 = 1;
    loop {
        for m in [1, 2, 5] {
            let step = magnitude.saturating_mul(m);
            if step.saturating_mul(TICKS) >= max {
                return (step.saturating_mul(TICKS), step);
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// The text alternative: span, total, peak.
fn summary(lang: Lang, chart: &BarChart<'_>) -> String {
    let points = chart.points;
    let total = points.iter().map(|p| p.1).sum();
    let peak = points.iter().map(|p| p.1).max().unwrap_or(0);
    fn label(p: Option<&(String, u64)>) -> &str {
        p.map_or("", |p| p.0.as_str())
    }
    let unit = chart.y_label.to_lowercase();
    lang.chart_summary(&ChartSummary {
        bars: points.len(),
        first: label(points.first()),
        last: label(points.last()),
        total,
        peak,
        peak_at: label(points.iter().find(|p| p.1 == peak)),
        unit: &unit,
    })
}

/// The plot area's height.
const PLOT_H: f64 = H - TOP - BOTTOM;

/// The vertical axis: gridlines with their values, and its name.
fn y_axis(chart: &BarChart<'_>) -> Markup {
    let (top, step) = scale(chart.points.iter().map(|p| p.1).max().unwrap_or(0));
    html! {
        @for i in 0..=TICKS {
            @let value = i * step;
            @let y = H - BOTTOM - PLOT_H * value as f64 / top as f64;
            line.chart__grid x1=(LEFT) y1=(f(y)) x2=(W - RIGHT) y2=(f(y)) {}
            text x=(LEFT - 6.0) y=(f(y + 4.0)) text-anchor="end" { (value) }
        }
        line.chart__axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) {}
        text x=(f(14.0)) y=(f(TOP + PLOT_H / 2.0)) text-anchor="middle"
            transform=(format!("rotate(-90 14 {})", f(TOP + PLOT_H / 2.0))) { (chart.y_label) }
    }
}

/// The bars, each with its label and value as a tooltip.
fn bars(points: &[(String, u64)]) -> Markup {
    let (top, _) = scale(points.iter().map(|p| p.1).max().unwrap_or(0));
    let slot = (W - LEFT - RIGHT) / points.len().max(1) as f64;
    html! {
        @for (i, (label, v)) in points.iter().enumerate() {
            @let h = PLOT_H * *v as f64 / top as f64;
            rect.chart__bar x=(f(LEFT + i as f64 * slot + slot * 0.15)) y=(f(H - BOTTOM - h))
                width=(f(slot * 0.7)) height=(f(h)) {
                title { (label) " : " (v) }
            }
        }
    }
}

/// The horizontal axis: its line, every few labels, and its name.
fn x_axis(chart: &BarChart<'_>) -> Markup {
    let points = chart.points;
    let slot = (W - LEFT - RIGHT) / points.len().max(1) as f64;
    let every = points.len().div_ceil(MAX_X_LABELS).max(1);
    html! {
        line.chart__axis x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) {}
        @for (i, (label, _)) in points.iter().enumerate().step_by(every) {
            text x=(f(LEFT + (i as f64 + 0.5) * slot)) y=(f(H - BOTTOM + 18.0))
                text-anchor="middle" { (label) }
        }
        text x=(f(LEFT + (W - LEFT - RIGHT) / 2.0)) y=(f(H - 8.0)) text-anchor="middle" {
            (chart.x_label)
        }
    }
}

/// A coordinate, to one decimal.
fn f(v: f64) -> String {
    format!("{v:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart<'a>(points: &'a [(String, u64)], title: &'a str) -> BarChart<'a> {
        BarChart {
            id: "c",
            title,
            x_label: "Jour",
            y_label: "Appels",
            points,
        }
    }

    #[test]
    fn labels_and_titles_are_escaped() {
        let points = vec![("<b>a</b>".to_owned(), 3), ("\"z\"".to_owned(), 1)];
        let svg = bar_chart(Lang::Fr, &chart(&points, "<script>x</script>")).into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;x&lt;/script&gt;"), "{svg}");
        assert!(svg.contains("&quot;z&quot;"), "{svg}");
    }

    #[test]
    fn the_axis_is_round_and_bars_are_to_scale() {
        assert_eq!(scale(0), (4, 1));
        assert_eq!(scale(4), (4, 1));
        assert_eq!(scale(7), (8, 2));
        assert_eq!(scale(152), (200, 50));
        assert_eq!(scale(u64::MAX).0, u64::MAX);
        let points = vec![("d1".to_owned(), 2), ("d2".to_owned(), 4)];
        let svg = bar_chart(Lang::Fr, &chart(&points, "t")).into_string();
        // Top of the axis = 4: the tallest bar fills the plot (192), the other half.
        assert!(svg.contains("height=\"192.0\""), "{svg}");
        assert!(svg.contains("height=\"96.0\""), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2);
        // Values 0..4 on the vertical axis, the labels on the horizontal one.
        for tick in ["0", "1", "2", "3", "4"] {
            assert!(
                svg.contains(&format!("text-anchor=\"end\">{tick}</text>")),
                "{tick}"
            );
        }
        assert!(svg.contains(">d1</text>") && svg.contains(">d2</text>"));
    }

    #[test]
    fn the_chart_has_a_text_alternative_and_its_data_as_a_table() {
        let points: Vec<_> = (1..=30)
            .map(|d| (format!("2026-11-{d:02}"), d % 7))
            .collect();
        let html = bar_chart(Lang::Fr, &chart(&points, "Appels par jour")).into_string();
        assert!(
            html.contains("role=\"img\" aria-labelledby=\"c-title c-desc\""),
            "{html}"
        );
        assert!(
            html.contains(
                "<desc id=\"c-desc\">30 barres, de 2026-11-01 à 2026-11-30 : 87 appels au total, \
             au plus 6 (2026-11-06).</desc>"
            ),
            "{html}"
        );
        assert_eq!(
            html.matches("<td class=\"num\">").count(),
            30,
            "one row a bar"
        );
        // 30 bars: one label in four under the axis.
        assert_eq!(html.matches("text-anchor=\"middle\">2026-11-").count(), 8);
        let en = bar_chart(Lang::En, &chart(&points, "Calls")).into_string();
        assert!(
            en.contains("30 bars, from 2026-11-01 to 2026-11-30"),
            "{en}"
        );
    }
}
