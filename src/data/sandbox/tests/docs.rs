//! docs/sandbox.md shows one real answer per dataset. This checks that they
//! are what the generator gives, and prints them again after an intended
//! change of the generated data:
//! `cargo test print_docs_examples -- --ignored --nocapture`.

use super::*;

/// The company and year of the docs examples.
const EXAMPLE: (&str, i32) = ("970699161", 2024);

#[test]
fn docs_examples_are_what_the_generator_gives() {
    let doc = include_str!("../../../../docs/sandbox.md");
    let mut found = Vec::new();
    for block in doc.split("```json\n").skip(1) {
        let example: Value = serde_json::from_str(block.split("```").next().unwrap()).unwrap();
        let s = siren(example["siren"].as_str().unwrap());
        let year = example["annee"].as_i64().unwrap() as i32;
        let dataset = Dataset::ALL
            .into_iter()
            .find(|d| example.get(list_key(*d)).is_some())
            .unwrap();
        assert_eq!(
            example,
            json(&s, dataset, year),
            "docs/sandbox.md example for {dataset}"
        );
        found.push(dataset);
    }
    assert_eq!(
        found,
        Dataset::ALL,
        "one example per dataset, in catalogue order"
    );
}

#[test]
#[ignore = "prints the docs examples; run by hand"]
fn print_docs_examples() {
    let (s, year) = EXAMPLE;
    for dataset in Dataset::ALL {
        let body = String::from_utf8(bytes(&siren(s), dataset, year)).unwrap();
        println!("### `{dataset}`\n\n```json\n{}\n```\n", pretty(&body));
    }
}

/// Indents compact JSON two spaces per level, keeping the key order (a
/// `serde_json::Value` would sort the keys).
fn pretty(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let (mut depth, mut in_string, mut escaped) = (0, false, false);
    let mut chars = compact.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            (in_string, escaped) = match c {
                _ if escaped => (true, false),
                '\\' => (true, true),
                '"' => (false, false),
                _ => (true, false),
            };
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' if matches!(chars.peek(), Some('}' | ']')) => out.push(c),
            '{' | '[' => {
                depth += 1;
                out.push(c);
                newline(&mut out, depth);
            }
            '}' | ']' if out.ends_with(['{', '[']) => out.push(c),
            '}' | ']' => {
                depth -= 1;
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    out
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', 2 * depth));
}

#[test]
fn pretty_keeps_order_and_matches_the_docs_style() {
    let compact = r#"{"b":1,"a":[],"c":[{"x":"a,b:{\"}"}]}"#;
    let expected = "{\n  \"b\": 1,\n  \"a\": [],\n  \"c\": [\n    {\n      \"x\": \"a,b:{\\\"}\"\n    }\n  ]\n}";
    assert_eq!(pretty(compact), expected);
}
