//! Bar charts drawn on the server as SVG (no script, no library), for the
//! usage page (`usage/`): vertical bars (`vertical.rs`), stacked when
//! there are several series (a legend then names them) and with an
//! optional labelled limit line (a quota); horizontal bars for long labels
//! (`horizontal.rs`: error codes with their meaning). Each chart has
//! labelled axes, its values written on it, a text alternative
//! (`role="img"` named by its `<title>` and `<desc>`), and the same data as
//! a table behind a disclosure. Series differ by more than colour: one
//! solid, the next hatched, in the legend too. Written through maud, so
//! every label is escaped; plotters would add a dependency for the same
//! few shapes.

mod horizontal;
mod vertical;

pub use horizontal::{HorizontalChart, horizontal_chart};
pub use vertical::{BarChart, Fill, Limit, Series, bar_chart};

use super::html::table;
use super::lang::Lang;
use super::messages::Msg;
use maud::{Markup, html};

/// The drawing's width, in SVG user units.
const W: f64 = 720.0;
/// The room above the plot (the title, a legend).
const TOP: f64 = 52.0;
/// Gridlines above the zero line.
const TICKS: u64 = 4;

/// The top of the value axis and its step: a round step (1, 2 or 5 times
/// a power of ten) such that [`TICKS`] steps reach `max`.
fn scale(max: u64) -> (u64, u64) {
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

/// The frame every chart shares: the SVG (named by its title and
/// description, its title also drawn), then the data table behind a
/// disclosure.
fn figure(
    lang: Lang,
    (id, title, desc): (&str, &str, &str),
    height: f64,
    drawing: Markup,
    (head, rows): (&[&str], Markup),
) -> Markup {
    let (title_id, desc_id) = (format!("{id}-title"), format!("{id}-desc"));
    let data_id = format!("{id}-data");
    html! {
        div.chart #(id) {
            svg role="img" aria-labelledby=(format!("{title_id} {desc_id}"))
                viewBox=(format!("0 0 {W} {height}")) focusable="false" {
                // SVG elements are not void in HTML: each one is closed.
                title #(title_id) { (title) }
                desc #(desc_id) { (desc) }
                text.chart__title x="0" y="14" { (title) }
                (drawing)
            }
            details {
                summary #(data_id) { (lang.t(Msg::ChartData)) (lang.pick(" : ", ": ")) (title) }
                (table(&data_id, head, rows))
            }
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

    #[test]
    fn the_axis_is_round() {
        assert_eq!(scale(0), (4, 1));
        assert_eq!(scale(4), (4, 1));
        assert_eq!(scale(7), (8, 2));
        assert_eq!(scale(152), (200, 50));
        assert_eq!(scale(u64::MAX).0, u64::MAX);
    }
}
