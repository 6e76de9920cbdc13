//! Any bytes through the inbound pipeline's pure part: parse, classify, strip, command.
#![no_main]

use drip::inbound::{classify, parse, strip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = parse::parse_message(data, 1 << 20) {
        let _ = classify::classify(&msg);
        let answer = strip::extract_answer(&msg.body_text);
        let _ = classify::command(&answer);
        let _ = classify::distress(&answer, &["kill myself".to_owned(), "violence".to_owned()]);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = strip::extract_answer(text);
    }
});
