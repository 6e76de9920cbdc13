//! Any text as a lesson file and as course.toml: parse and lint must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(lesson) = drip::curriculum::parse_lesson("01-fuzz.md", text) {
            // A lesson that parses must come back the same through its canonical source.
            let again = drip::curriculum::parse_lesson("01-fuzz.md", &lesson.content.to_source());
            assert_eq!(again.map(|l| l.content).ok(), Some(lesson.content));
        }
        let _ = drip::curriculum::parse_course("fuzz", text);
    }
});
