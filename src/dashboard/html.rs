//! The look of every page (docs/contract.md §13): the layout in the
//! State's design system — skip link, header with the "République
//! française" block and the service's name, `<main>`, footer — and the
//! building blocks pages are made of (sections, tables, badges, alerts).
//! One language per page ([`Lang`]). Every page goes through maud's
//! `html!`, which is checked at compile time and escapes every spliced
//! value.
//!
//! The stylesheet (`opale.css`) is inlined in each page rather than served
//! at a path of its own: a page then works on any listener (the admin one,
//! the environment ones for the status page) and before any sign-in (the
//! 401 page) with no extra route nor request, and the Content-Security-
//! Policy allows exactly that stylesheet by its SHA-256 ([`CSP`]) instead
//! of `'unsafe-inline'`. It is ~8 KB a page, for pages read by people.

use super::lang::Lang;
use super::messages::Msg;
use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The stylesheet: the one thing spliced unescaped (a constant compiled
/// into the binary).
const STYLE: &str = include_str!("opale.css");

/// The pages' Content-Security-Policy: nothing loads but this stylesheet
/// (allowed by its hash), same-origin images, same-origin form posts; no
/// script, no frame, no `<base>`.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// A complete page in `lang`: `title` in the tab (with the service's name)
/// and as the page's `<h1>`, `body` under it in `<main>`.
pub fn page(lang: Lang, title: &str, body: Markup) -> Markup {
    let service = lang.t(Msg::ServiceName);
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (service) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                nav.skiplinks aria-label=(lang.t(Msg::SkipLinks)) {
                    div.container { ul { li {
                        a href="#contenu" { (lang.t(Msg::SkipToContent)) }
                    } } }
                }
                header.header {
                    div.container.header__body {
                        (brand())
                        div.service {
                            p.service__title { (service) }
                            p.service__tagline { (lang.t(Msg::ServiceTagline)) }
                        }
                    }
                }
                main #contenu.container tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                footer.footer {
                    div.container.footer__body {
                        (brand())
                        p.footer__text { (lang.t(Msg::FooterText)) }
                    }
                }
            }
        }
    }
}

/// The "République française" block with the motto: a name, hence French
/// on every page (`lang="fr"`).
fn brand() -> Markup {
    html! {
        p.brand lang="fr" {
            "République" br; "française"
            span.brand__motto { "Liberté" br; "Égalité" br; "Fraternité" }
        }
    }
}

/// A page that says one thing (sign-in, refusals, errors): a title, a
/// sentence, and a way back when there is one.
pub fn message(lang: Lang, title: Msg, text: Msg, back: Option<&str>) -> Markup {
    let body = html! {
        p.lead { (lang.t(text)) }
        @if let Some(href) = back {
            p { a href=(href) { (lang.t(Msg::BackToDashboard)) } }
        }
    };
    page(lang, lang.t(title), body)
}

/// A titled section; its `<h2>` has the id `{id}-title`, which its table
/// uses as its name. (Not a named landmark itself: its table's scrolling
/// frame is, and two landmarks may not share a name.)
pub fn section(id: &str, title: &str, content: Markup) -> Markup {
    let title_id = format!("{id}-title");
    html! {
        section #(id) {
            h2 #(title_id) { (title) }
            (content)
        }
    }
}

/// A table named by the element `label_id` (a section's title), with
/// column headers and rows. Its frame scrolls sideways on a narrow
/// screen, so it is focusable (a keyboard can scroll it) and named.
pub fn table(label_id: &str, head: &[&str], rows: Markup) -> Markup {
    html! {
        div.table role="region" aria-labelledby=(label_id) tabindex="0" {
            table aria-labelledby=(label_id) {
                thead { tr { @for h in head { th scope="col" { (h) } } } }
                tbody { (rows) }
            }
        }
    }
}

/// The colour of a badge or an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Grey: a plain state.
    Neutral,
    /// Green: admitted, active.
    Success,
    /// Red: denied, expired, damaged.
    Error,
    /// Orange: expiring soon, suspended.
    Warning,
    /// Blue: for information.
    Info,
}

impl Tone {
    /// The modifier class (`badge--error`, `alert--error`).
    fn class(self, block: &str) -> String {
        let modifier = match self {
            Tone::Neutral => return block.to_owned(),
            Tone::Success => "success",
            Tone::Error => "error",
            Tone::Warning => "warning",
            Tone::Info => "info",
        };
        format!("{block} {block}--{modifier}")
    }
}

/// A badge: a short state in small capitals.
pub fn badge(tone: Tone, text: &str) -> Markup {
    html! { span class=(tone.class("badge")) { (text) } }
}

/// An alert box with a bold title; `urgent` ones are announced at once
/// (`role="alert"`), the others when read (`role="status"`).
pub fn alert(tone: Tone, urgent: bool, title: &str, text: Markup) -> Markup {
    let role = if urgent { "alert" } else { "status" };
    html! {
        div class=(tone.class("alert")) role=(role) {
            p.alert__title { (title) }
            p { (text) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_escaped_and_the_page_has_one_language() {
        let fr = page(Lang::Fr, "<i>t</i>", html! {}).into_string();
        assert!(
            fr.contains("<title>&lt;i&gt;t&lt;/i&gt; — OPALE — passerelle API</title>"),
            "{fr}"
        );
        assert!(fr.starts_with("<!DOCTYPE html><html lang=\"fr\">"), "{fr}");
        assert!(fr.contains("Aller au contenu") && !fr.contains("Skip to content"));
        let en = page(Lang::En, "t", html! {}).into_string();
        assert!(en.starts_with("<!DOCTYPE html><html lang=\"en\">"), "{en}");
        assert!(en.contains("Skip to content") && !en.contains("Aller au contenu"));
        // The brand block is a name: French on both, and marked so.
        assert!(en.contains("<p class=\"brand\" lang=\"fr\">République<br>française"));
    }

    #[test]
    fn the_policy_allows_exactly_the_inlined_stylesheet() {
        let html = page(Lang::Fr, "t", html! {}).into_string();
        let inlined = html
            .split("<style>")
            .nth(1)
            .and_then(|s| s.split("</style>").next())
            .unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(inlined));
        assert!(
            CSP.contains(&format!("style-src 'sha256-{hash}'")),
            "{}",
            *CSP
        );
        assert!(!CSP.contains("unsafe-inline") && !CSP.contains("script-src"));
        // The design system's facts are in it.
        for fact in [
            "#000091",
            "#e1000f",
            "\"Marianne\",arial,sans-serif",
            "#0a76f6",
        ] {
            assert!(inlined.contains(fact), "{fact}");
        }
        // Nothing is fetched: no URL, no @import, no web font.
        for fetch in ["url(", "@import", "@font-face", "http"] {
            assert!(!inlined.contains(fetch), "{fetch}");
        }
    }

    #[test]
    fn badges_and_alerts_carry_their_tone() {
        let b = badge(Tone::Error, "<refusé>").into_string();
        assert_eq!(
            b,
            "<span class=\"badge badge--error\">&lt;refusé&gt;</span>"
        );
        assert_eq!(
            badge(Tone::Neutral, "x").into_string(),
            "<span class=\"badge\">x</span>"
        );
        let a = alert(Tone::Warning, false, "T", html! { "x" }).into_string();
        assert!(
            a.starts_with("<div class=\"alert alert--warning\" role=\"status\">"),
            "{a}"
        );
    }
}
