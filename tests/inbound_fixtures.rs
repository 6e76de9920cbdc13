//! Runs every reply fixture (`tests/fixtures/replies/NAME.eml` with its `NAME.json`) through parse, classify, strip and command, and checks each expected field.

use std::path::{Path, PathBuf};

use drip::inbound::{
    classify::{classify, command},
    parse::parse_message,
    strip::extract_answer,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    kind: String,
    command: Option<String>,
    text: String,
    /// Checked only for bounces that state it.
    bounce: Option<ExpectedBounce>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedBounce {
    status: String,
    hard: bool,
    recipient: Option<String>,
    original_message_id: Option<String>,
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies");
    let mut emls: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    emls.sort();
    emls
}

/// What differs between the expectation and the result for one fixture, if anything.
fn check(eml: &Path) -> Vec<String> {
    let json = eml.with_extension("json");
    let expected: Expected = serde_json::from_str(
        &std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{}: {e}", json.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    let raw = std::fs::read(eml).expect("fixture is readable");
    let msg = match parse_message(&raw, 10 << 20) {
        Ok(msg) => msg,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    let (kind, bounce) = classify(&msg);
    let text = extract_answer(&msg.body_text);
    let found_command = command(&text).map(|c| c.as_str().to_string());
    let mut problems = Vec::new();
    if kind.as_str() != expected.kind {
        problems.push(format!(
            "kind: got {}, want {}",
            kind.as_str(),
            expected.kind
        ));
    }
    if found_command != expected.command {
        problems.push(format!(
            "command: got {found_command:?}, want {:?}",
            expected.command
        ));
    }
    if text != expected.text {
        problems.push(format!(
            "text:\n--- got\n{text}\n--- want\n{}\n---",
            expected.text
        ));
    }
    match (bounce, expected.bounce) {
        (Some(got), Some(want)) => {
            let got = (got.status, got.hard, got.recipient, got.original_message_id);
            let want = (
                want.status,
                want.hard,
                want.recipient,
                want.original_message_id,
            );
            if got != want {
                problems.push(format!("bounce: got {got:?}, want {want:?}"));
            }
        }
        (None, Some(_)) => problems.push("bounce: got none".to_string()),
        _ => {}
    }
    problems
}

#[test]
fn every_reply_fixture_gives_its_expected_kind_command_and_text() {
    let emls = fixtures();
    assert!(
        emls.len() >= 30,
        "expected at least 30 fixtures, found {}",
        emls.len()
    );
    let failures: Vec<String> = emls
        .iter()
        .filter_map(|eml| {
            let problems = check(eml);
            let name = eml.file_stem().unwrap_or_default().to_string_lossy();
            (!problems.is_empty()).then(|| format!("{name}:\n  {}", problems.join("\n  ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        emls.len(),
        failures.join("\n")
    );
}
