//! What the page tests check in a real browser ([`super::browser`]):
//! axe-core's verdict, keyboard-only navigation with a visible focus ring,
//! a form sent from the keyboard, whole-page screenshots. Shared by every
//! test that opens pages people read (tests/accessibility.rs).

use super::browser::Browser;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

/// Tabs to the control named `control`, presses Enter, waits for the
/// page the form leads to.
pub fn submit_with_keyboard(browser: &Browser, control: &str) {
    for _ in 0..300 {
        browser.press(TAB);
        let name = browser.run(
            "const a = document.activeElement; \
             return a ? (a.getAttribute('aria-label') || a.textContent.trim()) : null",
            json!([]),
        );
        if name == json!(control) {
            browser.run("window.__opaleBefore = true", json!([]));
            browser.press(ENTER);
            browser.wait_for(
                "the page the form leads to",
                "return !window.__opaleBefore && document.readyState === 'complete'",
            );
            return;
        }
    }
    panic!("no control named {control:?} reached by Tab");
}

/// WebDriver's key code of Tab.
pub const TAB: char = '\u{E004}';
/// WebDriver's key code of Enter.
pub const ENTER: char = '\u{E007}';

/// axe-core's verdict on the page as it is: no violation, or a failure
/// listing each rule broken and where.
pub fn no_violation(browser: &Browser, axe: &str, what: &str) {
    browser.run(axe, json!([]));
    let violations = browser.run_async(
        "const done = arguments[arguments.length - 1]; \
         axe.run(document, {resultTypes: ['violations']}) \
           .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, \
             nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)})))) \
           .catch(e => done({error: String(e)}));",
        json!([]),
    );
    let list = violations
        .as_array()
        .unwrap_or_else(|| panic!("{what}: axe failed: {violations}"));
    assert!(
        list.is_empty(),
        "{what}: axe-core violations:\n{}",
        pretty(&violations)
    );
}

/// Tabs through the page from its top: every visible link and control
/// (disclosures open) gets the focus, each with a visible focus ring.
pub fn keyboard_reaches_everything(browser: &Browser, name: &str) -> usize {
    let expected = browser.run(
        "const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, \
           [tabindex]:not([tabindex=\"-1\"])'; \
         const all = [...document.querySelectorAll(sel)] \
           .filter(e => !e.disabled && e.getClientRects().length > 0); \
         all.forEach((e, i) => e.setAttribute('data-kbd', String(i))); \
         if (document.activeElement) document.activeElement.blur(); \
         window.scrollTo(0, 0); \
         return all.map(e => e.tagName.toLowerCase() + ' \"' + \
           (e.getAttribute('aria-label') || e.textContent).trim().replace(/\\s+/g, ' ').slice(0, 60) + '\"');",
        json!([]),
    );
    let expected: Vec<String> = serde_json::from_value(expected).unwrap();
    let mut reached = BTreeSet::new();
    for _ in 0..expected.len() + 5 {
        browser.press(TAB);
        let focus = browser.run(
            "const a = document.activeElement; \
             if (!a || a === document.body) return null; \
             const s = getComputedStyle(a); \
             return {k: a.getAttribute('data-kbd'), style: s.outlineStyle, \
                     width: parseFloat(s.outlineWidth), tag: a.outerHTML.slice(0, 80)};",
            json!([]),
        );
        if focus.is_null() {
            continue;
        }
        let ring = focus["style"] != "none" && focus["width"].as_f64().unwrap_or(0.0) >= 2.0;
        assert!(ring, "{name}: no visible focus ring on {}", focus["tag"]);
        if let Some(k) = focus["k"].as_str() {
            reached.insert(k.parse::<usize>().unwrap());
        }
        if reached.len() == expected.len() {
            break;
        }
    }
    let missed: Vec<_> = (0..expected.len())
        .filter(|i| !reached.contains(i))
        .map(|i| &expected[i])
        .collect();
    assert!(missed.is_empty(), "{name}: not reached by Tab: {missed:?}");
    expected.len()
}

/// A screenshot of the whole page at `width` into `file`.
pub fn screenshot(browser: &Browser, width: u32, file: &Path) {
    let height = browser.run("return document.documentElement.scrollHeight", json!([]));
    let height = height.as_u64().unwrap().clamp(600, 12_000) as u32;
    browser.resize(width, height);
    let png = browser.screenshot();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5000,
        "{}",
        file.display()
    );
    std::fs::write(file, png).unwrap();
    browser.resize(width, 900);
}

/// The path of axe-core's script, fetched by scripts/axe-core.sh.
pub fn axe_core() -> String {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let out =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/axe-core.sh"))
            .env("CARGO_TARGET_DIR", target)
            .output()
            .unwrap();
    assert!(
        out.status.success(),
        "axe-core could not be fetched (scripts/axe-core.sh needs python3 with pip, and PyPI): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    std::fs::read_to_string(&path).unwrap()
}

/// `v` as indented JSON (for failure messages).
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}
