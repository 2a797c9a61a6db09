//! Vertical bars: one bar per label (a day), its series stacked bottom
//! first, a legend when there are several, an optional limit line; the
//! value axis on the left, the labels under the plot.

use super::{TICKS, TOP, W, f, figure, scale};
use crate::dashboard::lang::Lang;
use crate::dashboard::messages::Msg;
use maud::{Markup, html};

/// How a series is painted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Filled in bleu France.
    Solid,
    /// Red diagonal hatching with a red outline.
    Hatched,
}

/// One series of a vertical chart: its name (legend and table column) and
/// its paint.
pub struct Series<'a> {
    /// Shown in the legend and as the table's column header.
    pub name: &'a str,
    /// How its bars are painted.
    pub fill: Fill,
}

/// A horizontal line across the plot (a quota): drawn dashed, labelled at
/// its right end, and given a column of the table.
pub struct Limit<'a> {
    /// Where the line is, in the vertical axis's unit.
    pub value: u64,
    /// Written on the plot above the line (`quota : 50 / min`).
    pub label: &'a str,
    /// The table's column header for it.
    pub column: &'a str,
}

/// A vertical bar chart's content.
pub struct BarChart<'a> {
    /// Unique on the page: the prefix of the chart's element ids.
    pub id: &'a str,
    /// What the chart shows (its accessible name and visible title).
    pub title: &'a str,
    /// The text alternative: what a reader should take from it.
    pub desc: &'a str,
    /// The horizontal axis's name (the labels' column in the table).
    pub x_label: &'a str,
    /// The vertical axis's name.
    pub y_label: &'a str,
    /// The series, bottom of the stack first (one: plain bars, no legend).
    pub series: &'a [Series<'a>],
    /// The bars, left to right: label and one value per series.
    pub points: &'a [(String, Vec<u64>)],
    /// A line to compare the bars with, if any.
    pub limit: Option<Limit<'a>>,
}

/// The margins and height of a vertical chart, in SVG user units.
const LEFT: f64 = 64.0;
/// Room right of the plot: the last day's label is centred under its bar.
const RIGHT: f64 = 40.0;
const BOTTOM: f64 = 56.0;
const H: f64 = 300.0;
/// The plot area's height.
const PLOT_H: f64 = H - TOP - BOTTOM;
/// Labels written under the horizontal axis at most (the table has all).
const MAX_X_LABELS: usize = 8;
/// Width of one character of a value written on a bar (10px digits).
const DIGIT_W: f64 = 6.5;

/// A vertical chart, then its data table.
pub fn bar_chart(lang: Lang, chart: &BarChart<'_>) -> Markup {
    let totals: Vec<u64> = chart.points.iter().map(|p| p.1.iter().sum()).collect();
    let limit = chart.limit.as_ref().map_or(0, |l| l.value);
    let (top, step) = scale(totals.iter().copied().max().unwrap_or(0).max(limit));
    let stacked = chart.series.len() > 1;
    let mut head = vec![chart.x_label];
    head.extend(chart.series.iter().map(|s| s.name));
    if stacked {
        head.push(lang.t(Msg::Total));
    }
    head.extend(chart.limit.as_ref().map(|l| l.column));
    let svg = html! {
        (patterns(chart.id, chart.series))
        @if stacked { (legend(chart.id, chart.series)) }
        (y_axis(chart.y_label, top, step))
        (bars(chart, top, &totals))
        @if let Some(l) = &chart.limit { (limit_line(l, top)) }
        (x_axis(chart))
    };
    let rows = html! {
        @for ((label, values), total) in chart.points.iter().zip(&totals) {
            tr {
                td { (label) }
                @for v in values { td.num { (v) } }
                @if stacked { td.num { (total) } }
                @if let Some(l) = &chart.limit { td.num { (l.value) } }
            }
        }
    };
    figure(
        lang,
        (chart.id, chart.title, chart.desc),
        H,
        svg,
        (&head, rows),
    )
}

/// The hatching of the chart's hatched series (ids are per chart: one
/// page holds several charts).
fn patterns(id: &str, series: &[Series<'_>]) -> Markup {
    html! {
        @if series.iter().any(|s| s.fill == Fill::Hatched) {
            defs {
                pattern #(format!("{id}-hatch")) width="6" height="6"
                    patternUnits="userSpaceOnUse" patternTransform="rotate(45)" {
                    rect.chart__hatch-ground width="6" height="6" {}
                    line.chart__hatch x1="0" y1="0" x2="0" y2="6" {}
                }
            }
        }
    }
}

/// A rectangle painted as `fill` (a hatched one by the chart's pattern).
fn painted(id: &str, fill: Fill, (x, y, w, h): (f64, f64, f64, f64), tip: Markup) -> Markup {
    let (x, y, w, h) = (f(x), f(y), f(w), f(h));
    match fill {
        Fill::Solid => html! {
            rect.chart__bar x=(x) y=(y) width=(w) height=(h) { (tip) }
        },
        Fill::Hatched => html! {
            rect class="chart__bar--hatched" fill=(format!("url(#{id}-hatch)"))
                x=(x) y=(y) width=(w) height=(h) { (tip) }
        },
    }
}

/// The legend, above the plot: each series' swatch and name.
fn legend(id: &str, series: &[Series<'_>]) -> Markup {
    let mut x = LEFT;
    let mut items = Vec::with_capacity(series.len());
    for s in series {
        items.push((x, s));
        x += 28.0 + s.name.chars().count() as f64 * 7.0;
    }
    html! {
        @for (x, s) in items {
            (painted(id, s.fill, (x, TOP - 30.0, 12.0, 12.0), html! {}))
            text x=(f(x + 18.0)) y=(f(TOP - 20.0)) { (s.name) }
        }
    }
}

/// The vertical axis: gridlines with their values, and its name.
fn y_axis(name: &str, top: u64, step: u64) -> Markup {
    html! {
        @for i in 0..=TICKS {
            @let value = i * step;
            @let y = H - BOTTOM - PLOT_H * value as f64 / top as f64;
            line.chart__grid x1=(LEFT) y1=(f(y)) x2=(W - RIGHT) y2=(f(y)) {}
            text x=(LEFT - 6.0) y=(f(y + 4.0)) text-anchor="end" { (value) }
        }
        line.chart__axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) {}
        text x=(f(14.0)) y=(f(TOP + PLOT_H / 2.0)) text-anchor="middle"
            transform=(format!("rotate(-90 14 {})", f(TOP + PLOT_H / 2.0))) { (name) }
    }
}

/// The bars, stacked bottom first, each part with its series, label and
/// value as a tooltip; the bar's total written above it when it fits.
fn bars(chart: &BarChart<'_>, top: u64, totals: &[u64]) -> Markup {
    let slot = (W - LEFT - RIGHT) / chart.points.len().max(1) as f64;
    let mut shapes = Vec::new();
    for (i, ((label, values), total)) in chart.points.iter().zip(totals).enumerate() {
        let x = LEFT + i as f64 * slot + slot * 0.15;
        let mut base = H - BOTTOM;
        for (s, v) in chart.series.iter().zip(values).filter(|(_, v)| **v > 0) {
            let h = PLOT_H * *v as f64 / top as f64;
            let tip = html! { title { (label) " — " (s.name) ": " (v) } };
            shapes.push(painted(chart.id, s.fill, (x, base - h, slot * 0.7, h), tip));
            base -= h;
        }
        if *total > 0 && total.to_string().len() as f64 * DIGIT_W <= slot {
            shapes.push(html! {
                text.chart__value x=(f(x + slot * 0.35)) y=(f(base - 4.0)) text-anchor="middle" {
                    (total)
                }
            });
        }
    }
    html! { @for shape in shapes { (shape) } }
}

/// The limit: a dashed line across the plot, its label above its right end.
fn limit_line(limit: &Limit<'_>, top: u64) -> Markup {
    let y = H - BOTTOM - PLOT_H * limit.value as f64 / top as f64;
    html! {
        line.chart__limit x1=(LEFT) y1=(f(y)) x2=(W - RIGHT) y2=(f(y)) {}
        text.chart__limit-label x=(W - RIGHT) y=(f(y - 6.0)) text-anchor="end" { (limit.label) }
    }
}

/// The horizontal axis: its line, every few labels counted back from the
/// last one (today is always named), and its name.
fn x_axis(chart: &BarChart<'_>) -> Markup {
    let points = chart.points;
    let slot = (W - LEFT - RIGHT) / points.len().max(1) as f64;
    let every = points.len().div_ceil(MAX_X_LABELS).max(1);
    let named = |i: &usize| (points.len() - 1 - i).is_multiple_of(every);
    html! {
        line.chart__axis x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) {}
        @for (i, (label, _)) in points.iter().enumerate().filter(|(i, _)| named(i)) {
            text x=(f(LEFT + (i as f64 + 0.5) * slot)) y=(f(H - BOTTOM + 18.0))
                text-anchor="middle" { (label) }
        }
        text x=(f(LEFT + (W - LEFT - RIGHT) / 2.0)) y=(f(H - 8.0)) text-anchor="middle" {
            (chart.x_label)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &[Series<'_>] = &[Series {
        name: "Appels",
        fill: Fill::Solid,
    }];
    const TWO: &[Series<'_>] = &[
        Series {
            name: "Acceptés",
            fill: Fill::Solid,
        },
        Series {
            name: "Refusés",
            fill: Fill::Hatched,
        },
    ];

    fn chart<'a>(
        points: &'a [(String, Vec<u64>)],
        series: &'a [Series<'a>],
        title: &'a str,
    ) -> BarChart<'a> {
        BarChart {
            id: "c",
            title,
            desc: "description",
            x_label: "Jour",
            y_label: "Appels",
            series,
            points,
            limit: None,
        }
    }

    fn day(d: u32, values: &[u64]) -> (String, Vec<u64>) {
        (format!("2026-11-{d:02}"), values.to_vec())
    }

    #[test]
    fn labels_and_titles_are_escaped() {
        let points = vec![
            ("<b>a</b>".to_owned(), vec![3]),
            ("\"z\"".to_owned(), vec![1]),
        ];
        let svg = bar_chart(Lang::Fr, &chart(&points, ONE, "<script>x</script>")).into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;x&lt;/script&gt;"), "{svg}");
        assert!(svg.contains("&quot;z&quot;"), "{svg}");
    }

    #[test]
    fn the_axis_is_round_and_bars_are_to_scale() {
        let points = vec![day(1, &[2]), day(2, &[4])];
        let svg = bar_chart(Lang::Fr, &chart(&points, ONE, "t")).into_string();
        // Top of the axis = 4: the tallest bar fills the plot (192), the other half.
        assert!(svg.contains("height=\"192.0\""), "{svg}");
        assert!(svg.contains("height=\"96.0\""), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2);
        // Values 0..4 on the vertical axis, the labels on the horizontal
        // one, each bar's value above it.
        for tick in ["0", "1", "2", "3", "4"] {
            assert!(
                svg.contains(&format!("text-anchor=\"end\">{tick}</text>")),
                "{tick}"
            );
        }
        assert!(svg.contains(">2026-11-01</text>") && svg.contains(">2026-11-02</text>"));
        assert!(svg.contains("text-anchor=\"middle\">4</text>"), "{svg}");
        assert!(!svg.contains("<pattern") && !svg.contains("class=\"chart__limit\""));
    }

    #[test]
    fn stacked_series_have_a_legend_a_hatching_and_a_total_column() {
        let points = vec![day(1, &[3, 1]), day(2, &[0, 0])];
        let html = bar_chart(Lang::Fr, &chart(&points, TWO, "t")).into_string();
        // Bottom part solid (3 of 4: 144), top part hatched (1: 48) on it.
        assert!(html.contains("<pattern id=\"c-hatch\""), "{html}");
        assert!(
            html.contains(
                "class=\"chart__bar\" x=\"110.2\" y=\"100.0\" width=\"215.6\" height=\"144.0\""
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "fill=\"url(#c-hatch)\" x=\"110.2\" y=\"52.0\" width=\"215.6\" height=\"48.0\""
            ),
            "{html}"
        );
        // The legend: a swatch of each paint and each name as text.
        assert!(html.contains(">Acceptés</text>") && html.contains(">Refusés</text>"));
        assert_eq!(html.matches("url(#c-hatch)").count(), 2, "bar and swatch");
        // The table: one column per series, then the total.
        assert!(html.contains("<th scope=\"col\">Total</th>"), "{html}");
        assert!(html.contains(
            "<tr><td>2026-11-01</td><td class=\"num\">3</td><td class=\"num\">1</td><td class=\"num\">4</td></tr>"
        ));
        // An empty day draws nothing.
        assert_eq!(
            html.matches("<rect").count(),
            5,
            "two parts, two swatches, the ground of the hatching"
        );
    }

    #[test]
    fn a_limit_is_a_labelled_line_within_the_scale() {
        let points = vec![day(1, &[3]), day(2, &[1])];
        let mut c = chart(&points, ONE, "t");
        c.limit = Some(Limit {
            value: 50,
            label: "quota : 50 / min",
            column: "Quota par minute",
        });
        let html = bar_chart(Lang::Fr, &c).into_string();
        // The axis reaches the quota (top 80): the line at 50.
        assert!(html.contains("text-anchor=\"end\">80</text>"), "{html}");
        assert!(
            html.contains("class=\"chart__limit\" x1=\"64\" y1=\"124.0\""),
            "{html}"
        );
        assert!(html.contains(">quota : 50 / min</text>"), "{html}");
        assert!(html.contains(
            "<tr><td>2026-11-01</td><td class=\"num\">3</td><td class=\"num\">50</td></tr>"
        ));
    }

    #[test]
    fn the_chart_has_a_text_alternative_and_its_data_as_a_table() {
        let points: Vec<_> = (1..=30).map(|d| day(d, &[u64::from(d % 7)])).collect();
        let mut c = chart(&points, ONE, "Appels par jour");
        c.desc = "30 jours, 87 appels.";
        let html = bar_chart(Lang::Fr, &c).into_string();
        assert!(
            html.contains("role=\"img\" aria-labelledby=\"c-title c-desc\""),
            "{html}"
        );
        assert!(html.contains("<desc id=\"c-desc\">30 jours, 87 appels.</desc>"));
        assert_eq!(
            html.matches("<td class=\"num\">").count(),
            30,
            "one row a bar"
        );
        // 30 bars: one label in four under the axis, the last one among them.
        assert_eq!(html.matches("text-anchor=\"middle\">2026-11-").count(), 8);
        assert!(html.contains("text-anchor=\"middle\">2026-11-30</text>"));
        assert!(!html.contains("text-anchor=\"middle\">2026-11-01</text>"));
        assert!(html.contains("<summary id=\"c-data\">Données du graphique : Appels par jour"));
        let en = bar_chart(Lang::En, &c).into_string();
        assert!(en.contains("Chart data: Appels par jour"), "{en}");
    }
}
