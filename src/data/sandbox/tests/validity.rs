//! Field values: IBANs and RIB keys, dates, amounts, third-party SIRENs,
//! and the links between datasets.

use super::*;

/// ISO 13616: move the first four characters to the end, letters to 10–35,
/// and the number must be 1 modulo 97. Done on the decimal string, in chunks.
fn iban_is_valid(iban: &str) -> bool {
    let rearranged = format!("{}{}", &iban[4..], &iban[..4]);
    let digits: String = rearranged
        .chars()
        .map(|c| c.to_digit(36).unwrap().to_string())
        .collect();
    let mut rest = String::new();
    for chunk in digits.as_bytes().chunks(7) {
        rest.push_str(std::str::from_utf8(chunk).unwrap());
        rest = (rest.parse::<u64>().unwrap() % 97).to_string();
    }
    rest == "1"
}

/// Clé RIB: with letters as digits (A–I and J–R → 1–9, S–Z → 2–9),
/// 89·bank + 15·branch + 3·account + key ≡ 0 (mod 97).
fn rib_is_valid(bban: &str) -> bool {
    let value = |s: &str| -> u64 {
        s.chars()
            .map(|c| match c {
                '0'..='9' => c as u64 - '0' as u64,
                _ => {
                    let n = c as u64 - 'A' as u64;
                    (n + u64::from(c >= 'S')) % 9 + 1
                }
            })
            .fold(0, |acc, d| acc * 10 + d)
    };
    let (bank, branch, account, key) = (&bban[..5], &bban[5..10], &bban[10..21], &bban[21..]);
    (89 * value(bank) + 15 * value(branch) + 3 * value(account) + value(key)) % 97 == 0
}

#[test]
fn independent_iban_and_rib_checkers_know_the_published_examples() {
    assert!(iban_is_valid("FR7630006000011234567890189"));
    assert!(iban_is_valid("FR1420041010050500013M02606"));
    assert!(!iban_is_valid("FR7630006000011234567890188"));
    assert!(rib_is_valid("30006000011234567890189"));
    assert!(rib_is_valid("20041010050500013M02606"));
    assert!(!rib_is_valid("30006000011234567890188"));
}

#[test]
fn every_iban_passes_mod_97_and_every_rib_key_is_right() {
    let mut seen = 0;
    for (_, _, _, value) in sample(300, &[2015, 2025]) {
        let mut all = Vec::new();
        fields(&value, &mut all);
        for (key, v) in all {
            if key.starts_with("iban") {
                let iban = v.as_str().unwrap();
                assert_eq!((iban.len(), &iban[..2]), (27, "FR"), "{iban}");
                assert!(iban_is_valid(iban), "{iban}");
                assert!(rib_is_valid(&iban[4..]), "{iban}");
                seen += 1;
            }
            if key == "bic" {
                let bic = v.as_str().unwrap();
                assert!(matches!(bic.len(), 8 | 11) && &bic[4..6] == "FR", "{bic}");
            }
        }
    }
    assert!(seen > 1000, "only {seen} IBANs checked");
}

/// `YYYY-MM-DD` naming a real day.
fn is_iso_date(s: &str) -> bool {
    let parts: Vec<u32> = s.split('-').filter_map(|p| p.parse().ok()).collect();
    let [y, m, d] = parts[..] else { return false };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    s.len() == 10 && (1..=12).contains(&m) && d >= 1 && d <= days[m as usize - 1]
}

#[test]
fn every_date_is_inside_the_year_and_start_dates_before_its_end() {
    for (s, dataset, year, value) in sample(150, &[2015, 2020, 2024, 2025]) {
        let (first, last) = (format!("{year}-01-01"), format!("{year}-12-31"));
        let mut all = Vec::new();
        fields(&value, &mut all);
        for (key, v) in all.iter().filter(|(k, _)| k.starts_with("date_")) {
            let Some(date) = v.as_str() else {
                assert!(v.is_null(), "{key}: {v}");
                continue;
            };
            assert!(is_iso_date(date), "{s} {dataset} {year} {key}: {date}");
            assert!(date <= last.as_str(), "{s} {dataset} {year} {key}: {date}");
            // Opening and start dates are the only ones that may predate the year.
            if !matches!(key.as_str(), "date_ouverture" | "date_debut") {
                assert!(date >= first.as_str(), "{s} {dataset} {year} {key}: {date}");
            }
        }
    }
}

#[test]
fn amounts_are_strings_with_exactly_two_decimals() {
    let mut seen = 0;
    for (_, _, _, value) in sample(100, &[2016, 2024]) {
        let mut all = Vec::new();
        fields(&value, &mut all);
        for (_, v) in all.iter().filter(|(k, _)| k == "montant") {
            let amount = v.as_str().unwrap();
            let (euros, cents) = amount.split_once('.').unwrap();
            assert!(
                !euros.is_empty() && euros.bytes().all(|b| b.is_ascii_digit()),
                "{amount}"
            );
            assert!(
                cents.len() == 2 && cents.bytes().all(|b| b.is_ascii_digit()),
                "{amount}"
            );
            seen += 1;
        }
    }
    assert!(seen > 1000, "only {seen} amounts checked");
}

/// Luhn, from the left on a 9-digit string: odd indexes are doubled.
fn luhn_ok(s: &str) -> bool {
    let sum: u32 = s
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0') * if i % 2 == 1 { 2 } else { 1 };
            d / 10 + d % 10
        })
        .sum();
    s.len() == 9 && sum.is_multiple_of(10)
}

#[test]
fn third_party_sirens_are_luhn_valid_and_not_reserved() {
    let mut seen = 0;
    for s in sirens(500) {
        let value = json(&s, Dataset::Habilitations, 2025);
        for item in items(&value, Dataset::Habilitations) {
            let tiers = item["siren"].as_str().unwrap();
            assert!(luhn_ok(tiers) && Siren::parse(tiers).is_ok(), "{tiers}");
            assert!(RESERVED.iter().all(|(r, _)| *r != tiers));
            seen += 1;
        }
    }
    assert!(seen >= 500);
}

#[test]
fn refunds_are_the_refunded_claims_and_payments_match_the_returns() {
    for s in sirens(200) {
        for year in [2017, 2024] {
            let claims = json(&s, Dataset::Creances, year);
            let refunds = json(&s, Dataset::Remboursements, year);
            let refunded: Vec<_> = items(&claims, Dataset::Creances)
                .iter()
                .filter(|c| c["statut"] == "remboursee")
                .map(|c| (c["reference"].clone(), c["montant"].clone()))
                .collect();
            let mut paid: Vec<_> = items(&refunds, Dataset::Remboursements)
                .iter()
                .map(|r| (r["reference_creance"].clone(), r["montant"].clone()))
                .collect();
            paid.sort_by_key(|p| p.0.to_string());
            let mut refunded = refunded;
            refunded.sort_by_key(|p| p.0.to_string());
            assert_eq!(paid, refunded);

            let returns = json(&s, Dataset::Declarations, year);
            let payments = json(&s, Dataset::Paiements, year);
            for d in items(&returns, Dataset::Declarations) {
                if d["formulaire"] != "CA3" || d["montant"] == "0.00" {
                    continue;
                }
                let matching = items(&payments, Dataset::Paiements).iter().any(|p| {
                    p["formulaire"] == "CA3"
                        && p["periode"] == d["periode"]
                        && p["montant"] == d["montant"]
                        && p["date_paiement"] == d["date_depot"]
                });
                assert!(matching, "{s} {year}: no payment for {d}");
            }
        }
    }
}
