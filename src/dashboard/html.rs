//! HTML building blocks of the dashboards: escaping, the page layout
//! (accessible, readable at 1280×800 and on a phone, no JavaScript, no
//! CDN), the server-rendered SVG bar chart, and the plain-language
//! explanation of a denial in French and English.

use crate::audit::TraceEvent;
use std::fmt::Write;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#111;background:#fff}\
header{background:#00205b;color:#fff;padding:12px 16px}header h1{margin:0;font-size:1.3rem}\
main{padding:16px;max-width:1200px;margin:auto}section{margin-bottom:28px}\
h2{font-size:1.1rem;border-bottom:2px solid #00205b;padding-bottom:4px}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #bbb;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#e8ecf4}.denied{color:#8a0000;font-weight:600}.admitted{color:#045d04}\
.warn{background:#fff3cd;border:1px solid #8a6d00;padding:6px;margin:4px 0}.crit{background:#f8d7da;border:1px solid #8a0000;padding:6px;margin:4px 0}\
.scroll{overflow-x:auto}button{font-size:.9rem;padding:4px 10px}\
@media (max-width:600px){main{padding:8px}td,th{font-size:.8rem}}";

/// A complete page.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\
         <header><h1>{t}</h1></header><main>{body}</main></body></html>",
        t = esc(title)
    )
}

/// A bar chart of `(label, value)` as inline SVG with a text alternative.
pub fn bar_chart(title: &str, points: &[(String, u64)]) -> String {
    let (w, h, pad) = (640.0_f64, 200.0_f64, 24.0_f64);
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let n = points.len().max(1) as f64;
    let bw = (w - 2.0 * pad) / n;
    let mut svg = format!(
        "<svg role=\"img\" aria-labelledby=\"chart-title\" viewBox=\"0 0 {w} {h}\" width=\"100%\" style=\"max-width:{w}px\">\
         <title id=\"chart-title\">{}</title>",
        esc(title)
    );
    for (i, (label, v)) in points.iter().enumerate() {
        let bh = (*v as f64 / max) * (h - 2.0 * pad);
        let x = pad + i as f64 * bw;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#00205b\"><title>{}: {v}</title></rect>",
            h - pad - bh,
            (bw - 2.0).max(1.0),
            esc(label)
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{pad}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#111\"/>",
        h - pad,
        w - pad
    );
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            "<text x=\"{pad}\" y=\"{h}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{h}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            esc(&first.0),
            w - pad,
            esc(&last.0)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Why a request was refused, in plain French and English.
pub fn explain(e: &TraceEvent) -> String {
    let year = e.year.map(|y| y.to_string()).unwrap_or_else(|| "?".into());
    let code = e.code.as_ref().map(ToString::to_string).unwrap_or_default();
    let (fr, en) = match code.as_str() {
        "910000" => (
            "en-tête X-Correlation-ID absent ou invalide".into(),
            "missing or invalid X-Correlation-ID header".into(),
        ),
        "910001" => ("SIREN invalide".into(), "invalid SIREN".into()),
        "910002" => ("année mal formée".into(), "malformed year".into()),
        "910100" => (
            "aucun certificat client présenté".into(),
            "no client certificate presented".into(),
        ),
        "910101" => (
            "certificat non reconnu, expiré ou pas encore valide".into(),
            "certificate not trusted, expired or not yet valid".into(),
        ),
        "910102" => ("certificat révoqué".into(), "certificate revoked".into()),
        "910103" => (
            "certificat non enregistré pour une application de cet environnement".into(),
            "certificate not registered to an application here".into(),
        ),
        "910200" => (
            format!("IP {} non déclarée", e.ip),
            format!("IP {} not declared", e.ip),
        ),
        "900902" => ("jeton d'accès absent".into(), "access token missing".into()),
        "900901" => (
            "jeton d'accès invalide, expiré ou révoqué".into(),
            "access token invalid, expired or revoked".into(),
        ),
        "910400" => (
            "jeton lié à un autre certificat".into(),
            "token bound to another certificate".into(),
        ),
        "910401" => (
            "jeton émis pour une autre application".into(),
            "token issued to another application".into(),
        ),
        "910402" => (
            "application ou partenaire suspendu".into(),
            "application or partner suspended".into(),
        ),
        "900910" => (
            "périmètre (scope) non accordé".into(),
            "scope not granted".into(),
        ),
        "910500" => (
            format!("année {year} non couverte par l'habilitation"),
            format!("year {year} not covered by the grant"),
        ),
        "910501" => (
            "habilitation hors de sa période de validité".into(),
            "grant outside its validity period".into(),
        ),
        "900804" => (
            "quota de la minute atteint".into(),
            "per-minute quota reached".into(),
        ),
        "910600" => (
            "service en maintenance".into(),
            "service under maintenance".into(),
        ),
        "910601" => (
            "le fournisseur de données n'a pas répondu à temps".into(),
            "the data provider timed out".into(),
        ),
        "910602" => (
            "le fournisseur de données a échoué".into(),
            "the data provider failed".into(),
        ),
        "" => return String::new(),
        other => (format!("refus {other}"), format!("refused ({other})")),
    };
    format!(
        "<span lang=\"fr\">{}</span> / <span lang=\"en\">{}</span>",
        esc(&fr),
        esc(&en)
    )
}
