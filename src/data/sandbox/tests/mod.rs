//! Properties of every answer, checked over many SIRENs and years. The
//! checkers (IBAN, RIB key, Luhn, dates) are written independently of the
//! generator; `validity` holds the checks on field values, `docs` keeps
//! docs/sandbox.md in step with the generator.

mod docs;
mod validity;

use super::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Valid, non-reserved SIRENs spread over the whole range.
fn sirens(count: usize) -> Vec<Siren> {
    (100_000_000u64..999_999_999)
        .step_by(9_973)
        .filter_map(|n| Siren::parse(&format!("{n:09}")).ok())
        .filter(|s| reserved(s).is_none())
        .take(count)
        .collect()
}

fn siren(s: &str) -> Siren {
    Siren::parse(s).unwrap()
}

fn bytes(siren: &Siren, dataset: Dataset, year: i32) -> Vec<u8> {
    match generate(siren, dataset, year) {
        SandboxAnswer::Data(bytes) => bytes,
        other => panic!("{siren} {dataset} {year}: {other:?}"),
    }
}

fn json(siren: &Siren, dataset: Dataset, year: i32) -> Value {
    serde_json::from_slice(&bytes(siren, dataset, year)).unwrap()
}

/// The documented shape of each dataset: its list's name and its items'
/// fields, in order (docs/sandbox.md).
const SHAPES: [(Dataset, &str, &str); 7] = [
    (
        Dataset::Declarations,
        "declarations",
        "formulaire libelle periode date_limite date_depot montant nature_montant statut",
    ),
    (
        Dataset::ComptesBancaires,
        "comptes",
        "iban bic domiciliation titulaire date_ouverture usage",
    ),
    (
        Dataset::Creances,
        "creances",
        "reference impot nature formulaire periode date_depot montant statut date_decision",
    ),
    (
        Dataset::Paiements,
        "paiements",
        "reference impot nature formulaire periode date_echeance date_paiement montant moyen \
         iban_debite statut",
    ),
    (
        Dataset::Remboursements,
        "remboursements",
        "reference reference_creance impot nature date_ordonnancement date_virement montant \
         moyen iban_credite statut",
    ),
    (
        Dataset::ObligationsFiscales,
        "obligations",
        "impot regime periodicite formulaires date_debut",
    ),
    (
        Dataset::Habilitations,
        "habilitations",
        "siren denomination qualite missions date_debut date_fin statut",
    ),
];

/// The name of the dataset's list.
fn list_key(dataset: Dataset) -> &'static str {
    SHAPES
        .iter()
        .find(|(d, _, _)| *d == dataset)
        .map_or("", |(_, key, _)| key)
}

/// The fields of the dataset's items, in order.
fn item_fields(dataset: Dataset) -> Vec<&'static str> {
    let fields = SHAPES
        .iter()
        .find(|(d, _, _)| *d == dataset)
        .map_or("", |(_, _, f)| f);
    fields.split_whitespace().collect()
}

fn items(value: &Value, dataset: Dataset) -> &Vec<Value> {
    value[list_key(dataset)].as_array().unwrap()
}

/// Every answer of a sample, with its SIREN, dataset and year.
fn sample(count: usize, years: &[i32]) -> Vec<(Siren, Dataset, i32, Value)> {
    let mut out = Vec::new();
    for s in sirens(count) {
        for &year in years {
            for dataset in Dataset::ALL {
                out.push((s, dataset, year, json(&s, dataset, year)));
            }
        }
    }
    out
}

/// Every (key, value) pair of every object inside `value`.
fn fields(value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.push((k.clone(), v.clone()));
                fields(v, out);
            }
        }
        Value::Array(list) => list.iter().for_each(|v| fields(v, out)),
        _ => {}
    }
}

#[test]
fn same_input_gives_identical_bytes() {
    for s in sirens(40) {
        for dataset in Dataset::ALL {
            for year in [FIRST_YEAR, 2020, LAST_YEAR] {
                assert_eq!(generate(&s, dataset, year), generate(&s, dataset, year));
            }
        }
    }
}

#[test]
fn another_siren_or_year_gives_other_data() {
    let all = sirens(20);
    for pair in all.windows(2) {
        for dataset in Dataset::ALL {
            assert_ne!(
                bytes(&pair[0], dataset, 2024),
                bytes(&pair[1], dataset, 2024)
            );
            assert_ne!(
                bytes(&pair[0], dataset, 2023),
                bytes(&pair[0], dataset, 2024)
            );
        }
        // Not only the "siren" and "annee" fields: the content differs too.
        for dataset in [
            Dataset::Declarations,
            Dataset::ComptesBancaires,
            Dataset::Habilitations,
        ] {
            let (a, b) = (json(&pair[0], dataset, 2024), json(&pair[1], dataset, 2024));
            assert_ne!(items(&a, dataset), items(&b, dataset), "{dataset}");
        }
        let (a, b) = (
            json(&pair[0], Dataset::Paiements, 2023),
            json(&pair[0], Dataset::Paiements, 2024),
        );
        assert_ne!(items(&a, Dataset::Paiements), items(&b, Dataset::Paiements));
    }
}

#[test]
fn golden_output_is_unchanged() {
    // One company per regime: VAT franchise, normal, simplified. Regenerate
    // docs/sandbox.md and update this hash only for an intended change of
    // the generated data.
    let mut all = Sha256::new();
    for s in ["732829320", "552100554", "970699161"] {
        for dataset in Dataset::ALL {
            all.update(bytes(&siren(s), dataset, 2024));
            all.update(b"\n");
        }
    }
    assert_eq!(
        hex::encode(all.finalize()),
        "7735d7f499bda371898d061b5254462689700cc095aff7ee0f39df9956e90e20"
    );
}

#[test]
fn body_has_siren_annee_and_the_documented_list() {
    for (s, dataset, year, value) in sample(30, &[FIRST_YEAR, 2021, LAST_YEAR]) {
        let raw = String::from_utf8(bytes(&s, dataset, year)).unwrap();
        let prefix = format!(
            r#"{{"siren":"{s}","annee":{year},"{}":["#,
            list_key(dataset)
        );
        assert!(raw.starts_with(&prefix) && raw.ends_with("]}"), "{raw}");
        assert_eq!(value.as_object().unwrap().len(), 3);
        for item in items(&value, dataset) {
            let mut keys: Vec<&str> = item
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut expected = item_fields(dataset);
            keys.sort_unstable();
            expected.sort_unstable();
            assert_eq!(keys, expected, "{dataset}");
        }
    }
}

#[test]
fn reserved_sirens_give_their_answer_for_every_dataset_and_year() {
    // The description names the case in plain words (integration tests look
    // reserved SIRENs up by it).
    let expected = [
        (
            "000000000",
            "unknown company",
            SandboxAnswer::UnknownCompany,
        ),
        ("111111118", "no data", SandboxAnswer::NoDataForYear),
        (
            "222222226",
            "upstream timeout",
            SandboxAnswer::UpstreamTimeout,
        ),
        ("333333334", "non-diffusible", SandboxAnswer::NonDiffusible),
    ];
    assert_eq!(RESERVED.len(), expected.len());
    for ((listed, description), (s, words, answer)) in RESERVED.iter().zip(expected) {
        assert_eq!(*listed, s);
        assert!(description.to_lowercase().contains(words), "{description}");
        let s = Siren::parse(s).expect("reserved SIRENs are valid SIRENs");
        assert!(answer.message().is_some());
        for dataset in Dataset::ALL {
            for year in [1990, FIRST_YEAR, 2024, LAST_YEAR, 2030] {
                assert_eq!(generate(&s, dataset, year), answer, "{s} {dataset} {year}");
            }
        }
    }
}

#[test]
fn years_outside_the_range_have_no_data() {
    let s = siren("732829320");
    for dataset in Dataset::ALL {
        for year in [i32::MIN, 0, 2014, 2051, i32::MAX] {
            assert_eq!(generate(&s, dataset, year), SandboxAnswer::NoDataForYear);
        }
        for year in FIRST_YEAR..=LAST_YEAR {
            assert!(matches!(
                generate(&s, dataset, year),
                SandboxAnswer::Data(_)
            ));
        }
    }
}
