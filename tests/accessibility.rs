//! Every page people read, in a real Chromium (docs/contract.md §13): a
//! real server over real mTLS (the browser presents each viewer's own
//! client certificate, see `support::browser`), real data behind each page
//! (partners, applications, calls, a security event, a notice). For each
//! page of [`PAGES`]: axe-core reports no violation (at desktop and phone
//! widths, and again with every disclosure open), the page is in the
//! language the browser asked for, Tab alone reaches every link and form
//! control, each with a visible focus ring, and screenshots are written to
//! `target/tmp/accessibility/` for a person to look at. The list of pages
//! checked is printed on stderr.
//!
//! Needs Debian's chromium, chromium-driver (same version) and
//! libnss3-tools, and axe-core's script, fetched once by
//! `scripts/axe-core.sh` (scripts/test.sh installs all of it).
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::Sandbox;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use support::TestServer;
use support::browser::{Browser, Setup, require_tools};
use support::page_checks::{
    axe_core, keyboard_reaches_everything, no_violation, screenshot, submit_with_keyboard,
};
use support::pki::Identity;

/// Who looks at a page (each has its own browser and certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    /// The admin certificate written by `pki init`.
    Admin,
    /// Société Alpha's registered application certificate.
    Partner,
    /// A certificate of the sandbox CA registered nowhere.
    Stranger,
    /// No certificate at all.
    Nobody,
}

/// The language the browser asks for (`Accept-Language`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lang {
    Fr,
    En,
}

/// The listener that serves a page.
#[derive(Debug, Clone, Copy)]
enum At {
    Admin,
    Sandbox,
}

/// How the browser reaches a page.
#[derive(Debug, Clone, Copy)]
enum Reach {
    /// Goes to this path.
    Get(&'static str),
    /// On the page at `on`, tabs to the control named `control` and
    /// presses Enter: a form sent from the keyboard alone.
    Press {
        on: &'static str,
        control: &'static str,
    },
    /// On the page at `on`, writes `value` into the field `id`, then
    /// presses the control `control` from the keyboard.
    Fill {
        on: &'static str,
        id: &'static str,
        value: &'static str,
        control: &'static str,
    },
    /// Sends a form to `action` from a page of another site.
    FromOtherSite { action: &'static str },
}

/// One page to check: who sees it, in which language, where, how it is
/// reached, and a text it must show (proof it is the page meant).
struct Page {
    name: &'static str,
    who: Who,
    lang: Lang,
    at: At,
    reach: Reach,
    shows: &'static str,
}

/// Every page checked, in order. A new page is one line; `{alpha}` and
/// `{beta}` stand for the two partners' ids, `{alpha_app}` for Alpha's
/// application and `{csr}` for a certificate request made by the test.
#[rustfmt::skip]
const PAGES: &[Page] = &[
    Page { name: "admin", who: Who::Admin, lang: Lang::Fr, at: At::Admin, reach: Reach::Get("/dashboard"), shows: "rafale de refus" },
    Page { name: "admin-en", who: Who::Admin, lang: Lang::En, at: At::Admin, reach: Reach::Get("/dashboard"), shows: "Recent denials by control" },
    Page { name: "admin-suspend-form", who: Who::Admin, lang: Lang::Fr, at: At::Admin, reach: Reach::Press { on: "/dashboard", control: "Suspendre Société Bêta" }, shows: "Réactiver" },
    Page { name: "admin-cross-site-form", who: Who::Admin, lang: Lang::Fr, at: At::Admin, reach: Reach::FromOtherSite { action: "/dashboard/partners/{beta}/resume" }, shows: "autre site" },
    Page { name: "partner", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::Get("/dashboard"), shows: "année 2019 non couverte par l'habilitation" },
    Page { name: "partner-contacts", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::Get("/dashboard/partners/{alpha}/contacts"), shows: "Contact technique" },
    Page { name: "partner-contacts-error", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::Fill { on: "/dashboard/partners/{alpha}/contacts", id: "technique-email", value: "pas-une-adresse", control: "Enregistrer les contacts" }, shows: "Adresse e-mail invalide" },
    Page { name: "partner-contacts-saved", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::Press { on: "/dashboard/partners/{alpha}/contacts", control: "Enregistrer les contacts" }, shows: "Contacts enregistrés" },
    Page { name: "partner-application", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::Get("/dashboard/applications/{alpha_app}"), shows: "Nouveau certificat" },
    Page { name: "partner-csr-error", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::Fill { on: "/dashboard/applications/{alpha_app}", id: "csr", value: "bonjour", control: "Obtenir le certificat" }, shows: "Demande de certificat illisible" },
    Page { name: "partner-certificate", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::Fill { on: "/dashboard/applications/{alpha_app}", id: "csr", value: "{csr}", control: "Obtenir le certificat" }, shows: "Certificat émis et enregistré" },
    Page { name: "partner-secret", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::Press { on: "/dashboard/applications/{alpha_app}", control: "Générer un nouveau secret" }, shows: "Copiez ce secret maintenant" },
    Page { name: "partner-cross-site-form", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::FromOtherSite { action: "/dashboard/applications/{alpha_app}/secret" }, shows: "autre site" },
    Page { name: "usage", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::Get("/dashboard/usage"), shows: "2 appels acceptés et 3 refusés" },
    Page { name: "partner-en", who: Who::Partner, lang: Lang::En, at: At::Admin, reach: Reach::Get("/dashboard"), shows: "year 2019 not covered by the grant" },
    Page { name: "partner-application-en", who: Who::Partner, lang: Lang::En, at: At::Admin, reach: Reach::Get("/dashboard/applications/{alpha_app}"), shows: "New certificate" },
    Page { name: "usage-en", who: Who::Partner, lang: Lang::En, at: At::Admin, reach: Reach::Get("/dashboard/usage"), shows: "910500 — year not covered by the grant" },
    Page { name: "not-found", who: Who::Partner, lang: Lang::Fr, at: At::Admin, reach: Reach::Get("/dashboard/nulle-part"), shows: "Page introuvable" },
    Page { name: "sign-in", who: Who::Nobody, lang: Lang::Fr, at: At::Admin, reach: Reach::Get("/dashboard"), shows: "Connexion par certificat" },
    Page { name: "sign-in-en", who: Who::Nobody, lang: Lang::En, at: At::Admin, reach: Reach::Get("/dashboard"), shows: "Sign in with a certificate" },
    Page { name: "refused", who: Who::Stranger, lang: Lang::Fr, at: At::Admin, reach: Reach::Get("/dashboard"), shows: "Accès refusé" },
    Page { name: "status", who: Who::Nobody, lang: Lang::Fr, at: At::Sandbox, reach: Reach::Get("/status"), shows: "Lenteurs du bac à sable" },
];

/// What the pages are filled with, and who signs in.
struct Fixture {
    ca_pem: PathBuf,
    admin: u16,
    sandbox: u16,
    alpha: String,
    alpha_app: String,
    csr: String,
    beta: String,
    identities: HashMap<Who, Identity>,
}

impl Fixture {
    fn origin(&self, at: At) -> String {
        let port = match at {
            At::Admin => self.admin,
            At::Sandbox => self.sandbox,
        };
        format!("https://localhost:{port}")
    }

    /// `path` with its placeholders filled in.
    fn fill(&self, path: &str) -> String {
        path.replace("{alpha}", &self.alpha)
            .replace("{alpha_app}", &self.alpha_app)
            .replace("{csr}", &self.csr)
            .replace("{beta}", &self.beta)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_and_the_keyboard_in_a_real_browser() {
    require_tools();
    let axe = axe_core();
    let s = TestServer::start_with(|c| {
        c.abuse.denial_burst = 3;
        c.notify.check_interval_secs = 1;
    })
    .await;
    let fixture = fill(&s).await;
    let checked = tokio::task::spawn_blocking(move || check_all(&fixture, &axe))
        .await
        .unwrap();
    log(&format!(
        "accessibility: {} pages checked: {}",
        checked.len(),
        checked.join(", ")
    ));
    assert_eq!(checked.len(), PAGES.len());
    // The keyboard's form suspended Bêta; the other site's did not resume it.
    let beta = s.admin_call(Method::GET, "/admin/v1/partners", None).await;
    let beta = beta
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Société Bêta");
    assert_eq!(beta.unwrap()["status"], "suspended");
}

/// Two partners with an application each; Alpha's calls (admitted and
/// denied, three denials make a security event), its expiry notice.
async fn fill(s: &TestServer) -> Fixture {
    let alpha = s.client(Sandbox).await;
    let beta = s.client(Sandbox).await;
    for (id, name) in [
        (&alpha.partner, "Société Alpha"),
        (&beta.partner, "Société Bêta"),
    ] {
        let r = s
            .admin_call(
                Method::PATCH,
                &format!("/admin/v1/partners/{id}"),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let token = s.token(Sandbox, &alpha.cert, &alpha.id).await;
    for year in [2024, 2024, 2019, 2019, 2019] {
        let p = format!("/opale/v1/entreprises/732829320/declarations?annee={year}");
        s.data_call_with_token(Sandbox, &alpha.cert, &token, &p)
            .await;
    }
    // An open incident and a maintenance to come: on the status page and
    // on Alpha's dashboard.
    let soon = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let announced = [
        (
            "/admin/v1/incidents",
            json!({"name": "Lenteurs du bac à sable", "impact": "minor",
            "components": ["sandbox"], "message": "Temps de réponse dégradés, analyse en cours."}),
        ),
        (
            "/admin/v1/maintenances",
            json!({"components": ["sandbox"], "scheduled_for": rfc3339(soon),
            "scheduled_until": rfc3339(soon + time::Duration::minutes(30)),
            "message": "Remplacement d'un serveur", "emergency": true}),
        ),
    ];
    for (path, body) in announced {
        let r = s.admin_call(Method::POST, path, Some(body)).await;
        assert_eq!(r.status, 201, "{path}: {:?}", r.body);
    }
    // The certificate expires in 30 days: a notice is due at once.
    wait_until_listed(s, "/admin/v1/security-events").await;
    wait_until_listed(
        s,
        &format!("/admin/v1/notices?partner_id={}", alpha.partner),
    )
    .await;
    let identities = HashMap::from([
        (Who::Admin, s.pki.admin()),
        (Who::Partner, alpha.cert.clone()),
        (Who::Stranger, s.pki.partner(Sandbox, "inconnu")),
    ]);
    Fixture {
        ca_pem: s.pki.files.ca_pem(),
        admin: s.admin.port(),
        sandbox: s.sandbox.port(),
        alpha: alpha.partner,
        alpha_app: alpha.id,
        csr: support::pki::csr("alpha-nouveau").0,
        beta: beta.partner,
        identities,
    }
}

/// Waits (10 s at most) until the admin list at `path` is not empty.
async fn wait_until_listed(s: &TestServer, path: &str) {
    for _ in 0..200 {
        let r = s.admin_call(Method::GET, path, None).await;
        if r.body.as_array().is_some_and(|a| !a.is_empty()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} stayed empty");
}

/// Checks every page, one browser per viewer and language; the names of
/// the pages checked.
fn check_all(fixture: &Fixture, axe: &str) -> Vec<&'static str> {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("accessibility");
    std::fs::create_dir_all(&shots).unwrap();
    let origins = [fixture.origin(At::Admin), fixture.origin(At::Sandbox)];
    // One browser at a time (two cores): a new one when the viewer or
    // the language changes.
    let mut current: Option<((Who, Lang), Browser)> = None;
    let mut checked = Vec::new();
    for page in PAGES {
        let key = (page.who, page.lang);
        if current.as_ref().is_none_or(|(k, _)| *k != key) {
            drop(current.take());
            let browser = Browser::start(&Setup {
                ca_pem: &fixture.ca_pem,
                client: fixture.identities.get(&page.who),
                origins: &origins,
                accept_language: match page.lang {
                    Lang::Fr => "fr-FR,fr",
                    Lang::En => "en-GB,en",
                },
            });
            current = Some((key, browser));
        }
        let browser = &current.as_ref().unwrap().1;
        let url = reach(browser, fixture, page);
        let stops = check(browser, page, axe, &shots);
        log(&format!(
            "accessibility: {} ({url}): no axe violation, {stops} links and controls reached by Tab",
            page.name
        ));
        checked.push(page.name);
    }
    checked
}

/// Brings `browser` to `page`; the address it ends on.
fn reach(browser: &Browser, fixture: &Fixture, page: &Page) -> String {
    let origin = fixture.origin(page.at);
    match page.reach {
        Reach::Get(path) => browser.goto(&format!("{origin}{}", fixture.fill(path))),
        Reach::Press { on, control } => {
            browser.goto(&format!("{origin}{}", fixture.fill(on)));
            submit_with_keyboard(browser, control);
        }
        Reach::Fill {
            on,
            id,
            value,
            control,
        } => {
            browser.goto(&format!("{origin}{}", fixture.fill(on)));
            browser.run(
                "document.getElementById(arguments[0]).value = arguments[1]",
                json!([id, fixture.fill(value)]),
            );
            submit_with_keyboard(browser, control);
        }
        Reach::FromOtherSite { action } => {
            let form = format!(
                "<!doctype html><html lang=en><title>other site</title><main><form method=post \
                 action=\"{origin}{}\"><button>send</button></form></main></html>",
                fixture.fill(action)
            );
            let encoded: String = url::form_urlencoded::byte_serialize(form.as_bytes()).collect();
            browser.goto(&format!("data:text/html,{}", encoded.replace('+', "%20")));
            submit_with_keyboard(browser, "send");
        }
    }
    browser
        .run("return location.href", json!([]))
        .as_str()
        .unwrap()
        .to_owned()
}

/// The checks of one page; the number of links and controls Tab reached.
fn check(browser: &Browser, page: &Page, axe: &str, shots: &Path) -> usize {
    let lang = browser.run("return document.documentElement.lang", json!([]));
    let expected = match page.lang {
        Lang::Fr => "fr",
        Lang::En => "en",
    };
    assert_eq!(lang, json!(expected), "{}: <html lang>", page.name);
    let text = browser.run("return document.body.textContent", json!([]));
    let text = text.as_str().unwrap();
    assert!(
        text.contains(page.shows),
        "{}: {:?} not shown in:\n{text}",
        page.name,
        page.shows
    );
    for width in [1280, 390] {
        browser.resize(width, 900);
        no_violation(browser, axe, &format!("{} at {width} px", page.name));
        screenshot(
            browser,
            width,
            &shots.join(format!("{}-{width}.png", page.name)),
        );
    }
    browser.resize(1280, 900);
    browser.run(
        "document.querySelectorAll('details').forEach(d => d.open = true)",
        json!([]),
    );
    no_violation(
        browser,
        axe,
        &format!("{} with its disclosures open", page.name),
    );
    keyboard_reaches_everything(browser, page.name)
}

/// A line on the test log, shown even when the test passes (written to
/// stderr directly, not through the test harness's capture).
fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
