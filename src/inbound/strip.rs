//! Keeps only what the person wrote in a reply: drops quoted text, attribution lines, forwarded-header blocks, signatures, device footers and banners.
//!
//! The words clients use, per language, are data in `strip/lang/*.toml` (see `lang.rs` and
//! the README's "Reply languages"); the rules that use them are in `strip/markers.rs` (one
//! line at a time) and `strip/scan.rs` (the walk over the lines).

mod lang;
mod markers;
mod scan;

use std::sync::LazyLock;

use regex::Regex;

/// Returns the text the person wrote in `body`, a decoded reply body.
///
/// Quoted lines (`>`) are dropped wherever they are, so inline answers between quotes are kept;
/// an attribution ("On … wrote:" and its translations), a forwarded-header block, an
/// "Original Message" separator or a `-- ` signature ends the answer; device footers ("Sent
/// from my …") and gateway banners are dropped at either end. If a forward's separator or
/// an attribution at the very top would leave nothing, the text below it is the answer (a
/// forward sent without comment, or a reply written under the attribution). Line ends become `\n`, trailing spaces and blank lines at
/// either end go. Linear in the input.
pub fn extract_answer(body: &str) -> String {
    let text = body.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    let mut scanner = scan::Scanner::new(&lines);
    let (mut kept, cut) = scanner.written_lines(0);
    if !kept.iter().any(|l| !is_blank(l))
        && let Some(resume) = cut.and_then(|c| c.resume)
    {
        kept = scanner.written_lines(resume).0;
    }
    drop_trailing_footers(&mut kept);
    let first = kept.iter().position(|l| !is_blank(l)).unwrap_or(kept.len());
    kept[first..]
        .iter()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Blank, counting zero-width and direction marks as nothing.
fn is_blank(line: &str) -> bool {
    line.chars()
        .all(|c| c.is_whitespace() || markers::is_invisible(c))
}

/// "-Ann" or "-- Ann Lee" on its own at the end: a name written as a signature.
static DASH_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*-{1,2}\s?\p{Lu}[\p{L}'.]*(\s\p{Lu}[\p{L}'.]*){0,2}\s*$")
        .expect("built-in pattern")
});

/// Drops blank lines, rules, device footers and a dash-name signature from the end.
fn drop_trailing_footers(lines: &mut Vec<&str>) {
    // Clients add one or two footer lines; the cap only bounds the work on crafted input.
    let mut footers_left = 64;
    while let Some(last) = lines.last() {
        if is_blank(last) || markers::is_rule(last) {
            lines.pop();
        } else if footers_left > 0 && markers::is_device_line(last) {
            footers_left -= 1;
            lines.pop();
        } else {
            break;
        }
    }
    let n = lines.len();
    if n >= 3 && is_blank(lines[n - 2]) && DASH_NAME.is_match(lines[n - 1]) {
        lines.truncate(n - 1);
        while lines.last().is_some_and(|l| is_blank(l)) {
            lines.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::extract_answer;

    #[test]
    fn drops_a_trailing_quote_with_its_wrapped_attribution() {
        let body = "I never told them about the loan.\r\n\r\nOn Mon, Jan 1, 2024 at 9:00 AM Rebuilding Trust <\r\ncourse@example.org> wrote:\r\n\r\n> What have you not told them yet?\r\n";
        assert_eq!(extract_answer(body), "I never told them about the loan.");
    }

    #[test]
    fn keeps_inline_answers_between_quotes() {
        let body = "On 1 Jan 2024, at 09:00, Course <course@example.org> wrote:\n\n> What have you not told them?\n\nThat I lied.\n\n> And what stops you?\n>\n\nShame.\n\n> -- \n> The course\n";
        assert_eq!(extract_answer(body), "That I lied.\n\nShame.");
    }

    #[test]
    fn cuts_at_attributions_in_many_languages() {
        for attribution in [
            "Le lun. 1 janv. 2024 à 09:00, Course <course@example.org> a écrit :",
            "Am 01.01.2024 um 09:00 schrieb Course <course@example.org>:",
            "El lun, 1 ene 2024 a las 9:00, Course (<course@example.org>) escribió:",
            "Op ma 1 jan 2024 om 09:00 schreef Course <course@example.org>:",
            "Em seg., 1 de jan. de 2024 às 09:00, Course <course@example.org> escreveu:",
            "Il giorno lun 1 gen 2024 alle ore 09:00 Course <course@example.org> ha scritto:",
            "Den mån 1 jan. 2024 kl 09:00 skrev Course <course@example.org>:",
            "man. 1. jan. 2024 kl. 09:00 skrev Course <course@example.org>:",
            "---- On Mon, 01 Jan 2024 09:00:00 +0000 Course <course@example.org> wrote ----",
        ] {
            let body = format!("Mijn antwoord.\n\n{attribution}\n\nUnquoted copy of the lesson.\n");
            assert_eq!(extract_answer(&body), "Mijn antwoord.", "{attribution}");
        }
    }

    #[test]
    fn a_short_attribution_counts_only_above_a_quote() {
        assert_eq!(extract_answer("Yes.\n\nAnn wrote:\n> Did you?\n"), "Yes.");
        assert_eq!(
            extract_answer("My sister wrote:\nDo not call me.\n"),
            "My sister wrote:\nDo not call me."
        );
    }

    #[test]
    fn cuts_at_header_blocks_and_separators() {
        let outlook = "Yes.\n\n________________________________\nFrom: Course <course@example.org>\nSent: Monday, January 1, 2024 9:00 AM\nTo: Ann\nSubject: Lesson 3\n\nText";
        assert_eq!(extract_answer(outlook), "Yes.");
        let french = "Oui.\n\nDe : Course <course@example.org>\nEnvoyé : lundi 1 janvier 2024 09:00\nÀ : Ann\nObjet : Leçon 3\n";
        assert_eq!(extract_answer(french), "Oui.");
        assert_eq!(
            extract_answer("Yes.\n-----Original Message-----\nFrom: x"),
            "Yes."
        );
        assert_eq!(
            extract_answer("Ja.\n\n-----Ursprüngliche Nachricht-----\nVon: x"),
            "Ja."
        );
    }

    #[test]
    fn a_single_header_like_line_is_prose() {
        let body = "From: my side, it was fear.\nTo: be honest, mostly shame.";
        assert_eq!(extract_answer(body), body);
    }

    #[test]
    fn drops_signatures_and_trailing_device_lines_only() {
        assert_eq!(
            extract_answer("Fear.\n\n-- \nAnn\nhttps://example.com"),
            "Fear."
        );
        assert_eq!(extract_answer("Fear.\n\nSent from my iPhone"), "Fear.");
        assert_eq!(extract_answer("Fear.\nEnvoyé de mon iPhone\n"), "Fear.");
        assert_eq!(extract_answer("Fear.\nVon meinem iPhone gesendet"), "Fear.");
        assert_eq!(extract_answer("Fear.\nEnviado desde mi iPhone"), "Fear.");
        assert_eq!(
            extract_answer("Fear.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>"),
            "Fear."
        );
        let sentence = "Sent from my desk, this feels easier than from my phone.";
        assert_eq!(extract_answer(sentence), sentence);
        let middle = "Sent from my iPhone\nbut written with care.";
        assert_eq!(extract_answer(middle), middle);
        assert_eq!(
            extract_answer("It was sent from my iPhone last night."),
            "It was sent from my iPhone last night."
        );
        assert_eq!(
            extract_answer("Fear.\n\nSent with love"),
            "Fear.\n\nSent with love"
        );
    }

    #[test]
    fn prose_that_looks_like_a_footer_or_attribution_stays() {
        for body in [
            "On Monday at 9:30 I wrote:\nthat I was sorry, and then I deleted it.",
            "I finally said it.\n\nSent from Paris",
            "I finally said it.\n\nSent with love",
            "I finally said it.\nFrom my iPhone I can see the sea.",
        ] {
            assert_eq!(extract_answer(body), body);
        }
        assert_eq!(extract_answer("Done.\n\nSent from my TI-85"), "Done.");
        assert_eq!(
            extract_answer("Done.\n\nSent from Mailbox for iPad"),
            "Done."
        );
    }

    #[test]
    fn keeps_dashes_inside_lines_and_drops_trailing_rules() {
        assert_eq!(
            extract_answer("A fix -- not a signature.\n\n-----\n"),
            "A fix -- not a signature."
        );
    }

    #[test]
    fn recognises_attributions_by_shape_without_a_known_opener() {
        // Date first, no verb: the bracketed address and the colon close it.
        let body = "Fine by me.\n\n05.03.2024, 18.40, \"Desk\" <desk@example.net>:\n\nTheir text.";
        assert_eq!(extract_answer(body), "Fine by me.");
        // The timestamp line above "<address> kirjoitti:" is the attribution's first line.
        let body = "Kiitos.\n\nti 5. maaliskuuta 2024 klo 18.40 Desk\n<desk@example.net> kirjoitti:\n> Their text.";
        assert_eq!(extract_answer(body), "Kiitos.");
        // Polymail wraps the address over several lines and closes on "> wrote:".
        let body = "Done.\n\nOn Tue, Mar 5, 2024 at 6:40 PM Desk\n\n<\nmailto:Desk <desk@example.net>\n> wrote:\nTheir text.";
        assert_eq!(extract_answer(body), "Done.");
        // "---- Ann wrote ----" above a quote.
        assert_eq!(
            extract_answer("Yes.\n\n---- Ann Lee wrote ----\n\n> Will you?\n"),
            "Yes."
        );
    }

    #[test]
    fn keeps_text_typed_on_the_attributions_line() {
        assert_eq!(
            extract_answer(
                "sure thing On Tue, Mar 5, 2024 at 6:40 PM, desk@example.net wrote:\n> Ready?"
            ),
            "sure thing"
        );
        assert_eq!(
            extract_answer("Ruth Le Blanc <ruth@example.com> wrote:\n> Ready?"),
            ""
        );
    }

    #[test]
    fn wrapped_quote_lines_without_a_marker_stay_quoted() {
        let body = "My reply.\n\nOn Tue, Mar 5, 2024 at 6:40 PM Desk <desk@example.net> wrote:\n> A long quoted sentence that the client wrapped at seventy characters or\nso, leaving this tail without a marker.\n> Next quoted line.\n";
        assert_eq!(extract_answer(body), "My reply.");
        // An answer between quotes stays, even right under a quoted line.
        let body = "> Did you tell them?\nYes, on Sunday.\n> And then?\n";
        assert_eq!(extract_answer(body), "Yes, on Sunday.");
    }

    #[test]
    fn device_lines_anywhere_but_inside_a_paragraph() {
        // Between the answer and an unquoted copy of the lesson.
        let body = "It helped.\n\nSent from my Fairphone 5\n\nLesson three: what did you hide?";
        assert_eq!(extract_answer(body), "It helped.");
        // At the top.
        assert_eq!(
            extract_answer("Sent from my iPad\n\nHello,\n\nIt helped."),
            "Hello,\n\nIt helped."
        );
        // Inside a paragraph it is the person's sentence.
        let body = "Hello.\n\nSent from my iPad\nwhile waiting for the bus, sorry.";
        assert_eq!(extract_answer(body), body);
    }

    #[test]
    fn drops_banners_above_and_footers_below() {
        let body = "CAUTION: This message came from an external sender.\n\nHi,\n\nIt helped.";
        assert_eq!(extract_answer(body), "Hi,\n\nIt helped.");
        let body = "It helped.\n\nRuth\n\n* * *\n\nRuth Lee, Lee & Daughters\nhttps://example.com";
        assert_eq!(extract_answer(body), "It helped.\n\nRuth");
        // A spaced rule with much text below is the person's section break.
        let long = format!("Part one.\n\n* * *\n\n{}", "More of my story.\n".repeat(12));
        assert_eq!(extract_answer(&long), long.trim_end());
        assert_eq!(extract_answer("It helped.\n\n-Ruth Lee\n"), "It helped.");
    }

    #[test]
    fn header_blocks_take_the_lines_above_them() {
        let body = "Danke.\n-----Alte Nachricht-----\nVon: Desk <desk@example.net>\nDatum: 5. März 2024\nAn: Ruth\nBetreff: Woche zwei";
        assert_eq!(extract_answer(body), "Danke.");
        let body = "Danke.\nAm 05.03.24 um 18:40 schrieb Desk\nVon: Desk <desk@example.net>\nDatum: 5. März 2024\nAn: Ruth";
        assert_eq!(extract_answer(body), "Danke.");
        let body =
            "Fine.\n\nDate: Tue, 5 Mar 2024 18:40:00 +0100\nTo: ruth@example.com\n\nTheir text.";
        assert_eq!(extract_answer(body), "Fine.");
    }

    #[test]
    fn no_blank_line_where_the_person_left_none() {
        let body = "Yes.\nOn 5 Mar 2024, at 18:40, Desk wrote:\n\n> Ready?\n\nRuth";
        assert_eq!(extract_answer(body), "Yes.\nRuth");
    }

    #[test]
    fn a_marker_at_the_very_top_leaves_the_text_below() {
        let forward = "---------- Forwarded message ---------\nFrom: Desk <desk@example.net>\nDate: Tue, Mar 5, 2024 at 6:40 PM\nSubject: Week\n  two\nTo: ruth@example.com\n\nThe text I forwarded.";
        assert_eq!(extract_answer(forward), "The text I forwarded.");
        let under =
            "On 5 Mar 2024 18:40, \"Desk\" <desk@example.net> wrote:\n\nMy answer below it.";
        assert_eq!(extract_answer(under), "My answer below it.");
        assert_eq!(extract_answer("-- \nRuth Lee"), "");
        // Below a bare header block is the lesson being answered, not the person's words.
        let outlook = "From: Desk <desk@example.net>\nSent: Tuesday, March 5, 2024 6:40 PM\nTo: Ruth\nSubject: Week two\n\nWhat did you hide?";
        assert_eq!(extract_answer(outlook), "");
        assert_eq!(
            extract_answer("-----Original Message-----\nFrom: x\n\nWhat did you hide?"),
            ""
        );
    }

    #[test]
    /// Inputs built to make a careless scanner quadratic (about 10^12 steps at these sizes,
    /// hours of work). Each must finish; the bound is a hang detector, generous enough for
    /// a loaded machine, not a speed target (the fuzz target and benchmarks measure speed).
    fn pathological_input_does_not_blow_up() {
        let inputs = [
            "a".repeat(1 << 20),
            ">\n".repeat(100_000),
            "On On On ".repeat(1 << 17),
            "On On On wrote:\n".repeat(1 << 16),
            "From: a\n".repeat(1 << 17),
            format!(
                "{}\n{}",
                "On 1 Jan 2024 Ann <a@b>\n".repeat(40_000),
                "\n".repeat(100_000)
            ),
            "Sent from my iPhone\n".repeat(50_000),
            "\r".repeat(1 << 20),
            "1 a:\n".repeat(1 << 18),
            "On 1 Jan 2024 a@b wrote:\n".repeat(1 << 15),
            "To: a\n".repeat(1 << 17),
            "> On 1 Jan 2024 a@b wrote:\nOn 1 Jan 2024 a@b wrote:\n".repeat(1 << 14),
            "-\n".repeat(1 << 19),
            "* * *\n".repeat(1 << 17),
            "> a\nb\n".repeat(1 << 16),
            "x On 1 Jan 2024 a@b wrote:\n> q\n".repeat(1 << 14),
            "Sent from my iPhone\n\n".repeat(1 << 16),
            "On 1 Jan 2024 at 9:00 Ann\n\n<\n> wrote:\n".repeat(1 << 14),
            format!("{}x", "\u{200b}".repeat(1 << 18)),
            "Date: 1 Jan 2024 9:00\nTo: a@b\n".repeat(1 << 15),
        ];
        for input in inputs {
            let head: String = input.chars().take(20).collect();
            let (done, finished) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = extract_answer(&input);
                let _ = done.send(());
            });
            assert!(
                finished
                    .recv_timeout(std::time::Duration::from_secs(60))
                    .is_ok(),
                "{head:?}… did not finish in a minute"
            );
        }
    }
}
