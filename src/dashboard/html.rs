//! HTML building blocks of the dashboards: the page layout (accessible,
//! readable at 1280×800 and on a phone, no JavaScript, no CDN) and the
//! server-rendered SVG bar chart. Every page goes through maud's `html!`,
//! which is checked at compile time and escapes every spliced value.

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The stylesheet, inline (the CSP allows inline styles and nothing else).
/// A constant of this file, so it is the one thing spliced unescaped.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#111;background:#fff}\
header{background:#00205b;color:#fff;padding:12px 16px}header h1{margin:0;font-size:1.3rem}\
main{padding:16px;max-width:1200px;margin:auto}section{margin-bottom:28px}\
h2{font-size:1.1rem;border-bottom:2px solid #00205b;padding-bottom:4px}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #bbb;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#e8ecf4}.denied{color:#8a0000;font-weight:600}.admitted{color:#045d04}\
.warn{background:#fff3cd;border:1px solid #8a6d00;padding:6px;margin:4px 0}.crit{background:#f8d7da;border:1px solid #8a0000;padding:6px;margin:4px 0}\
.scroll{overflow-x:auto}button{font-size:.9rem;padding:4px 10px}\
@media (max-width:600px){main{padding:8px}td,th{font-size:.8rem}}";

/// A complete page: `title` in the tab and the banner, `body` in `<main>`.
pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { h1 { (title) } }
                main { (body) }
            }
        }
    }
}

/// A page that says one sentence (refusals, errors, not found).
pub fn message(title: &str, text: &str) -> Markup {
    page(title, html! { p { (text) } })
}

/// The chart's size and margin, in SVG user units.
const W: f64 = 640.0;
const H: f64 = 200.0;
const PAD: f64 = 24.0;

/// A bar chart of `(label, value)` as inline SVG with a text alternative
/// (the chart's title, and one title per bar).
pub fn bar_chart(title: &str, points: &[(String, u64)]) -> Markup {
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let bw = (W - 2.0 * PAD) / points.len().max(1) as f64;
    // SVG elements are not void in HTML: each one is closed explicitly.
    html! {
        svg role="img" aria-labelledby="chart-title" viewBox=(format!("0 0 {W} {H}"))
            width="100%" style=(format!("max-width:{W}px")) {
            title id="chart-title" { (title) }
            @for (i, (label, v)) in points.iter().enumerate() {
                @let bh = (*v as f64 / max) * (H - 2.0 * PAD);
                rect x=(format!("{:.1}", PAD + i as f64 * bw)) y=(format!("{:.1}", H - PAD - bh))
                    width=(format!("{:.1}", (bw - 2.0).max(1.0))) height=(format!("{bh:.1}"))
                    fill="#00205b" {
                    title { (label) ": " (v) }
                }
            }
            line x1=(PAD) y1=(H - PAD) x2=(W - PAD) y2=(H - PAD) stroke="#111" {}
            @if let (Some(first), Some(last)) = (points.first(), points.last()) {
                text x=(PAD) y=(H) font-size="11" { (first.0) }
                text x=(W - PAD) y=(H) font-size="11" text-anchor="end" { (last.0) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_labels_are_escaped() {
        let points = vec![("<b>a</b>".to_owned(), 3), ("\"z\"".to_owned(), 1)];
        let svg = bar_chart("<script>x</script>", &points).into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;x&lt;/script&gt;"), "{svg}");
        assert!(svg.contains("&quot;z&quot;"), "{svg}");
        let page = page("<i>t</i>", html! {}).into_string();
        assert!(
            page.contains("<title>&lt;i&gt;t&lt;/i&gt;</title>"),
            "{page}"
        );
    }

    #[test]
    fn the_tallest_bar_fills_the_chart() {
        let points = vec![("d1".to_owned(), 2), ("d2".to_owned(), 4)];
        let svg = bar_chart("t", &points).into_string();
        assert!(svg.contains("height=\"152.0\""), "{svg}");
        assert!(svg.contains("height=\"76.0\""), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2);
    }
}
