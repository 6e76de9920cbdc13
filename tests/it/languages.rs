//! drip's own words in the course's language: a course with `language = "fr"` gets every
//! public page, error page and system mail, and the text around each lesson, in French,
//! with no English of drip's left; an English course reads as before, dates included.
//!
//! "No English left" is checked against templates/i18n/en.toml itself: every run of two
//! or more words of every English text (between its placeholders) must be absent, every
//! short English label must not stand alone in an element or a line, and no English month
//! or weekday name may appear.

use chrono::{DateTime, Datelike, Duration as Days, Timelike, Utc};
use drip::db;
use drip::inbound;

use crate::on_both_databases;
use crate::support::{Backend, TestApp, find_url, path_of, repo, request};

const FORM: &str = "application/x-www-form-urlencoded";

on_both_databases!(
    a_french_course_speaks_french_in_every_page_and_mail,
    an_english_course_keeps_its_words_and_dates,
);

/// `drip lessons lint` on a copy of the French course and of the templates: clean as
/// shipped; then a course language without a file, and a key fr.toml lacks, are warnings
/// that name the file (and line, or key) and leave the exit code at success.
#[test]
fn lint_warns_of_a_language_without_words_and_of_a_missing_key() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
            }
        }
    };
    let course = tmp.path().join("lessons/petit-cours");
    copy(&repo("tests/fixtures/lessons/petit-cours"), &course);
    let templates = tmp.path().join("templates");
    for sub in ["email", "web", "i18n"] {
        copy(&repo(&format!("templates/{sub}")), &templates.join(sub));
    }
    let config = tmp.path().join("config.toml");
    let quoted = |p: &std::path::Path| toml::Value::String(p.display().to_string()).to_string();
    let text = std::fs::read_to_string(repo("config.toml"))
        .unwrap()
        .replacen("slug = \"rebuilding-trust\"", "slug = \"petit-cours\"", 1)
        .replacen(
            "lessons_dir = \"lessons\"",
            &format!("lessons_dir = {}", quoted(&tmp.path().join("lessons"))),
            1,
        )
        .replacen(
            "templates_dir = \"templates\"",
            &format!("templates_dir = {}", quoted(&templates)),
            1,
        );
    std::fs::write(&config, text).unwrap();
    let lint = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drip"))
            .args(["--config", config.to_str().unwrap(), "lessons", "lint"])
            .env_remove("DRIP_DATABASE__URL")
            .output()
            .unwrap();
        assert!(out.status.success(), "warnings only: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let clean = lint();
    assert!(clean.contains("3 lessons, no problems\n"), "{clean}");
    assert!(!clean.contains("warning"), "{clean}");

    // fr-CA reads fr.toml: no warning.
    let toml_path = course.join("course.toml");
    let source = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(
        &toml_path,
        source.replace("language = \"fr\"", "language = \"fr-ca\""),
    )
    .unwrap();
    assert!(!lint().contains("warning"));

    std::fs::write(
        &toml_path,
        source.replace("language = \"fr\"", "language = \"de\""),
    )
    .unwrap();
    let fr = templates.join("i18n/fr.toml");
    let words = std::fs::read_to_string(&fr).unwrap();
    let without = words.replacen("button = \"Envoyez-moi la première leçon\"\n", "", 1);
    assert_ne!(without, words);
    std::fs::write(&fr, without).unwrap();
    let out = lint();
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{out}");
    let at = format!(
        "warning: {}:5: language \"de\" has no translation",
        toml_path.display()
    );
    assert!(warnings[0].starts_with(&at), "{out}");
    assert!(warnings[0].contains("fall back to English"), "{out}");
    assert_eq!(
        warnings[1],
        format!(
            "warning: {}: index.button: missing: the English text is shown instead",
            fr.display()
        )
    );
    assert!(
        out.contains("3 lessons, no problems") && out.lines().any(|l| l == "2 warning(s)"),
        "{out}"
    );

    // A translation that fills a placeholder English does not have is a problem.
    std::fs::write(
        &fr,
        words.replace("{course} · envoyé par drip", "{cours} · envoyé par drip"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drip"))
        .args(["--config", config.to_str().unwrap(), "lessons", "lint"])
        .env_remove("DRIP_DATABASE__URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout.contains(&format!("{}: page.footer: {{cours}}", fr.display())),
        "{stdout}"
    );
}

/// What English looks like, from en.toml.
struct English {
    /// Runs of two or more words between placeholders.
    phrases: Vec<String>,
    /// Texts of one or two words with no placeholder ("Unsubscribe", "Your journal").
    labels: Vec<String>,
    /// Month and weekday names.
    names: Vec<String>,
}

fn english() -> English {
    let text = std::fs::read_to_string(repo("templates/i18n/en.toml")).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut english = English {
        phrases: Vec::new(),
        labels: Vec::new(),
        names: Vec::new(),
    };
    fn walk(key: &str, value: &toml::Value, e: &mut English) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    walk(&format!("{key}.{k}"), v, e);
                }
            }
            toml::Value::Array(items) => e
                .names
                .extend(items.iter().map(|i| i.as_str().unwrap().to_owned())),
            toml::Value::String(s) => {
                let placeholder = regex::Regex::new(r"\{[a-z0-9_]+\}").unwrap();
                let pieces: Vec<&str> = placeholder.split(s).collect();
                for piece in &pieces {
                    for line in piece.split('\n') {
                        let words = line.split_whitespace().count();
                        let has_letters = line.chars().any(char::is_alphabetic);
                        if words >= 2 && has_letters {
                            e.phrases.push(line.trim().to_owned());
                        }
                    }
                }
                let words = s.split_whitespace().count();
                if pieces.len() == 1 && words < 3 && s.chars().any(char::is_alphabetic) {
                    e.labels.push(s.trim().to_owned());
                }
            }
            _ => {}
        }
    }
    walk("", &toml::Value::Table(table), &mut english);
    assert!(english.phrases.len() > 100, "{}", english.phrases.len());
    assert!(english.labels.len() > 20, "{:?}", english.labels);
    assert_eq!(english.names.len(), 19);
    english
}

/// The text as a reader sees it: HTML entities minijinja writes turned back into characters.
fn as_read(text: &str) -> String {
    text.replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&#x2f;", "/")
        .replace("&nbsp;", "\u{a0}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn word_at(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

impl English {
    /// Fails if `text` (a page, a subject, a mail part) holds any of drip's English.
    fn absent_from(&self, what: &str, text: &str) {
        let text = as_read(text);
        for phrase in &self.phrases {
            assert!(
                !text.contains(phrase.as_str()),
                "{what}: English {phrase:?} left in:\n{text}"
            );
        }
        for label in &self.labels {
            let alone = text.contains(&format!(">{label}<"))
                || text
                    .lines()
                    .any(|l| l.trim() == label || l.trim() == label.to_uppercase());
            let label_word = label.chars().all(|c| c.is_alphabetic() || c == ' ');
            let as_word = label_word && label.len() > 3 && word_at(&text, label);
            assert!(
                !(alone || as_word),
                "{what}: English label {label:?} left in:\n{text}"
            );
        }
        for name in &self.names {
            assert!(
                !word_at(&text, name),
                "{what}: English name {name:?} in:\n{text}"
            );
        }
        for word in ["Lesson ", "Hi ", "status:", " of 3", "lessons."] {
            assert!(!text.contains(word), "{what}: {word:?} in:\n{text}");
        }
    }
}

/// A mail from the outbox: its subject and its two parts, decoded.
struct Mail {
    subject: String,
    text: String,
    html: String,
}

/// The mails to `to` whose file name ends with `name_ends`, in the order they were queued.
fn mails(t: &TestApp, name_ends: &str, to: &str) -> Vec<Mail> {
    t.outbox()
        .into_iter()
        .filter(|(name, _)| name.ends_with(name_ends))
        .filter_map(|(_, raw)| {
            let message = mail_parser::MessageParser::default()
                .parse(raw.as_bytes())
                .expect("a mail");
            let recipient = message.to()?.first()?.address()?.to_owned();
            (recipient == to).then(|| Mail {
                subject: message.subject().unwrap_or_default().to_owned(),
                text: message.body_text(0).unwrap_or_default().into_owned(),
                html: message.body_html(0).unwrap_or_default().into_owned(),
            })
        })
        .collect()
}

/// The one mail to `to` whose file name ends with `name_ends`.
fn mail(t: &TestApp, name_ends: &str, to: &str) -> Mail {
    let mut found = mails(t, name_ends, to);
    assert_eq!(found.len(), 1, "mails ending {name_ends} to {to}");
    found.remove(0)
}

impl Mail {
    fn check(&self, what: &str, e: &English) {
        e.absent_from(&format!("{what} (subject)"), &self.subject);
        e.absent_from(&format!("{what} (text)"), &self.text);
        e.absent_from(&format!("{what} (html)"), &self.html);
        assert!(
            self.html.contains("<html lang=\"fr\""),
            "{what}: {}",
            self.html
        );
        assert!(self.text.contains("Bonjour "), "{what}: {}", self.text);
    }
}

async fn subscriber(t: &TestApp, email: &str) -> db::subscribers::SubscriberRow {
    db::subscribers::by_email(&t.app.db, email)
        .await
        .unwrap()
        .unwrap()
}

async fn tick(t: &TestApp, now: DateTime<Utc>) {
    drip::outbox::tick(&t.app, now).await.unwrap();
}

/// The French fixture course, with help text of its own (configuration, not catalogue).
async fn french_app(backend: Backend) -> TestApp {
    TestApp::builder(backend)
        .config(|c| {
            c.course.lessons_dir = repo("tests/fixtures/lessons");
            c.course.default = "petit-cours".into();
            c.inbound.help_text = "Si vous êtes en danger, appelez le 112.\n\nEn France, le 3114 répond jour et nuit.".into();
        })
        .build()
        .await
}

/// The reply Ana sends to a lesson mail.
fn reply(t: &TestApp, delivery_id: i64, n: u32, body: &str) -> String {
    format!(
        "From: Ana <ana@exemple.fr>\r\nTo: {}\r\nSubject: Re: Bienvenue\r\nMessage-ID: <r{n}@exemple.fr>\r\n\
         In-Reply-To: <{}>\r\nDate: Mon, 04 May 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        t.app.reply_address(delivery_id),
        t.app.message_id(delivery_id)
    )
}

const WEEKDAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

fn french_day(d: u32) -> String {
    if d == 1 { "1er".into() } else { d.to_string() }
}

async fn a_french_course_speaks_french_in_every_page_and_mail(backend: Backend) {
    let t = french_app(backend).await;
    let e = english();
    let page = |what: &str, status: u16, got: (u16, String)| {
        assert_eq!(got.0, status, "{what}: {}", got.1);
        assert!(got.1.contains("<html lang=\"fr\">"), "{what}: {}", got.1);
        e.absent_from(what, &got.1);
        as_read(&got.1)
    };

    // The list of courses (a French and an English course here) speaks the site's
    // language, the default course's; each course's own title and description are its own.
    let list = page(
        "list of courses",
        200,
        request(&t.app, "GET", "/", None, "").await,
    );
    for french in [
        "De courts cours par mail, une leçon à la fois.",
        "3 leçons sur environ 4 jours.",
        "/courses/small-course#signup",
    ] {
        assert!(list.contains(french), "{french} missing:\n{list}");
    }

    // The course page, and the form refusing what it cannot take.
    let index = page(
        "course page",
        200,
        request(&t.app, "GET", "/courses/petit-cours", None, "").await,
    );
    for french in [
        "Un petit cours",
        "3 courtes leçons par e-mail",
        "Le déroulement",
        "1 leçon.",
        "Envoyez-moi la première leçon",
        "Prénom",
        "Un petit cours · envoyé par drip",
    ] {
        assert!(index.contains(french), "{french} missing:\n{index}");
    }
    let refused = page(
        "refused sign-up",
        422,
        request(
            &t.app,
            "POST",
            "/subscribe",
            Some(FORM),
            "email=nope&name=A%0AB&timezone=Mars%2FBase",
        )
        .await,
    );
    for french in [
        "Adresse e-mail\u{a0}: doit avoir la forme nom@exemple.fr",
        "Prénom\u{a0}: ne doit contenir ni retour à la ligne",
        "Fuseau horaire\u{a0}: \"Mars/Base\" n'est pas un fuseau horaire connu",
    ] {
        assert!(refused.contains(french), "{french} missing:\n{refused}");
    }

    // Three sign-ups: Ana (named), Béa (no name), Cléo (stops before confirming).
    let now = Utc::now();
    for body in [
        "email=ana%40exemple.fr&name=Ana&timezone=Europe%2FParis",
        "email=bea%40exemple.fr&timezone=America%2FMontreal",
        "email=cleo%40exemple.fr&timezone=Europe%2FParis",
    ] {
        let done = page(
            "subscribed",
            200,
            request(&t.app, "POST", "/subscribe", Some(FORM), body).await,
        );
        assert!(
            done.contains("Consultez votre boîte de réception"),
            "{done}"
        );
    }
    tick(&t, now + Days::seconds(1)).await;
    let confirm = mail(&t, "-confirm.eml", "ana@exemple.fr");
    confirm.check("confirm mail", &e);
    assert_eq!(confirm.subject, "Merci de confirmer\u{a0}: Un petit cours");
    assert!(confirm.text.contains("Bonjour Ana,"), "{}", confirm.text);
    assert!(
        confirm.html.contains("Oui, envoyez-moi le cours"),
        "{}",
        confirm.html
    );
    let unnamed = mail(&t, "-confirm.eml", "bea@exemple.fr");
    unnamed.check("confirm mail without a name", &e);
    assert!(unnamed.text.contains("Bonjour à vous,"), "{}", unnamed.text);
    let confirm_path = |m: &Mail| path_of(&find_url(&m.text, "http").expect("a link"));
    let (ana_link, bea_link, cleo_link) = (
        confirm_path(&confirm),
        confirm_path(&unnamed),
        confirm_path(&mail(&t, "-confirm.eml", "cleo@exemple.fr")),
    );

    // The confirm page in each of its states.
    let ask = page(
        "confirm page",
        200,
        request(&t.app, "GET", &ana_link, None, "").await,
    );
    assert!(
        ask.contains("Commencer «\u{a0}Un petit cours\u{a0}»\u{a0}?"),
        "{ask}"
    );
    assert!(ask.contains("Oui, je commence le cours"), "{ask}");
    let ana = subscriber(&t, "ana@exemple.fr").await;
    drip::subscriptions::confirm(
        &t.app,
        drip::subscriptions::ConfirmLink::Subscriber(ana.id),
        "test",
        now,
    )
    .await
    .unwrap();
    let already = page(
        "confirmed twice",
        200,
        request(&t.app, "POST", &ana_link, Some(FORM), "").await,
    );
    assert!(already.contains("Inscription déjà confirmée"), "{already}");
    let confirmed = page(
        "confirmed",
        200,
        request(&t.app, "POST", &bea_link, Some(FORM), "").await,
    );
    assert!(confirmed.contains("C'est parti"), "{confirmed}");
    let cleo = subscriber(&t, "cleo@exemple.fr").await;
    drip::subscriptions::unsubscribe(&t.app, cleo.id, None, "test", now)
        .await
        .unwrap();
    let expired = page(
        "confirm link of a stopped sign-up",
        200,
        request(&t.app, "GET", &cleo_link, None, "").await,
    );
    assert!(
        expired.contains("inscrivez-vous sur la page du cours</a>."),
        "{expired}"
    );

    // The welcome mail, with the first lesson's time on Ana's clock in French words.
    tick(&t, now + Days::seconds(2)).await;
    let welcome = mail(&t, "-welcome.eml", "ana@exemple.fr");
    welcome.check("welcome mail", &e);
    assert_eq!(welcome.subject, "C'est parti\u{a0}: Un petit cours");
    let enrollment = db::enrollments::for_subscriber(&t.app.db, ana.id)
        .await
        .unwrap()
        .remove(0);
    let due = DateTime::from_timestamp(enrollment.next_due_at.unwrap(), 0)
        .unwrap()
        .with_timezone(&chrono_tz::Europe::Paris);
    let when = format!(
        "{} {} {} à {}\u{a0}h\u{a0}{:02} ({})",
        WEEKDAYS[due.weekday().num_days_from_monday() as usize],
        french_day(due.day()),
        MONTHS[due.month0() as usize],
        due.hour(),
        due.minute(),
        due.format("%Z")
    );
    assert!(
        welcome
            .text
            .contains(&format!("la première vous parviendra {when}.")),
        "{when}: {}",
        welcome.text
    );
    assert!(welcome.text.contains("Leçon 5 sur 20"), "{}", welcome.text);
    assert!(
        welcome
            .text
            .contains("les coordonnées en bas de chaque leçon"),
        "the course has a footer"
    );

    // Béa asks for discreet mails on her preferences page.
    let bea = subscriber(&t, "bea@exemple.fr").await;
    let bea_prefs = path_of(&t.app.links(bea.id, None).preferences);
    let saved = page(
        "preferences, saved",
        200,
        request(
            &t.app,
            "POST",
            &bea_prefs,
            Some(FORM),
            "action=discreet&discreet=on",
        )
        .await,
    );
    assert!(saved.contains("C'est enregistré"), "{saved}");
    assert!(saved.contains("<strong>en cours</strong>"), "{saved}");

    // The first lesson: French around the author's French.
    let until = now + Days::days(2);
    tick(&t, until).await;
    let lesson = mail(&t, "-lesson-bienvenue.eml", "ana@exemple.fr");
    lesson.check("lesson mail", &e);
    for french in [
        "Un petit cours · Leçon 1 sur 3 · Remarquer",
        "VOTRE RÉFLEXION",
        "Se désinscrire\u{a0}: http",
        "Vos réponses jusqu'ici\u{a0}: http",
    ] {
        assert!(lesson.text.contains(french), "{french}: {}", lesson.text);
    }
    assert!(
        lesson
            .html
            .contains(">Faire une pause ou changer de fuseau horaire</a>"),
        "{}",
        lesson.html
    );
    let discreet = mail(&t, "-lesson-bienvenue.eml", "bea@exemple.fr");
    discreet.check("discreet lesson mail", &e);
    assert_eq!(discreet.subject, "Leçon 1 sur 3");
    assert!(
        discreet
            .html
            .contains("Votre prochaine lecture est arrivée."),
        "{}",
        discreet.html
    );

    // Replies: PAUSE, RESUME, an answer with words of distress, and a plain answer.
    let sent = db::deliveries::for_subscriber(&t.app.db, ana.id)
        .await
        .unwrap();
    let lesson_id = sent
        .iter()
        .find(|d| d.kind.as_str() == "lesson")
        .unwrap()
        .id;
    for (n, body) in [
        (1, "PAUSE"),
        (2, "RESUME"),
        (3, "Certains jours, je pense au suicide."),
        (4, "J'ai enfin parlé à ma sœur."),
    ] {
        inbound::ingest(
            &t.app,
            reply(&t, lesson_id, n, body).as_bytes(),
            false,
            until,
        )
        .await
        .unwrap();
    }
    tick(&t, until + Days::seconds(1)).await;
    let notices = mails(&t, "-notice.eml", "ana@exemple.fr");
    let titles: Vec<&str> = notices.iter().map(|n| n.subject.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Votre cours est en pause",
            "Votre cours reprend",
            "Votre réponse est enregistrée. Où trouver de l'aide maintenant"
        ]
    );
    for (n, notice) in notices.iter().enumerate() {
        notice.check(&format!("notice {n}"), &e);
    }
    assert!(
        notices[2]
            .text
            .contains("Personne n'a encore lu votre réponse.")
    );
    assert!(
        notices[2]
            .text
            .contains("En France, le 3114 répond jour et nuit."),
        "the configured help"
    );

    // The preferences page: as shown, a refused time zone, a pause.
    let ana_prefs = path_of(&t.app.links(ana.id, None).preferences);
    let prefs = page(
        "preferences page",
        200,
        request(&t.app, "GET", &ana_prefs, None, "").await,
    );
    assert!(prefs.contains("leçons reçues\u{a0}: 1"), "{prefs}");
    assert!(prefs.contains("Leçon 5 sur 20"), "{prefs}");
    let bad = page(
        "preferences, refused",
        422,
        request(
            &t.app,
            "POST",
            &ana_prefs,
            Some(FORM),
            "action=timezone&timezone=Lune%2FBase",
        )
        .await,
    );
    assert!(
        bad.contains("Fuseau horaire\u{a0}: \"Lune/Base\" n'est pas"),
        "{bad}"
    );
    let paused = page(
        "preferences, paused",
        200,
        request(&t.app, "POST", &ana_prefs, Some(FORM), "action=pause").await,
    );
    assert!(paused.contains("Cours en pause."), "{paused}");

    // The journal: the gate, the mailed link, the page and its download.
    let gate_path = path_of(&t.app.links(ana.id, None).journal);
    let gate = page(
        "journal gate",
        200,
        request(&t.app, "GET", &gate_path, None, "").await,
    );
    assert!(gate.contains("Il reste valable 24 heures."), "{gate}");
    page(
        "journal link sent",
        200,
        request(&t.app, "POST", &gate_path, Some(FORM), "").await,
    );
    tick(&t, Utc::now() + Days::seconds(1)).await;
    let link_mail = mail(&t, "-journal-link.eml", "ana@exemple.fr");
    link_mail.check("journal link mail", &e);
    assert_eq!(link_mail.subject, "Votre journal");
    let access = path_of(&find_url(&link_mail.text, "http").unwrap());
    let ask = page(
        "journal, its button",
        200,
        request(&t.app, "GET", &access, None, "").await,
    );
    assert!(ask.contains("Afficher mes réponses"), "{ask}");
    assert!(!ask.contains("J'ai enfin parlé"), "{ask}");
    let journal = page(
        "journal",
        200,
        request(&t.app, "POST", &access, Some(FORM), "").await,
    );
    assert!(journal.contains("J'ai enfin parlé à ma sœur."), "{journal}");
    let answered = until.with_timezone(&chrono_tz::Europe::Paris);
    let date = format!(
        "{} {} {}",
        french_day(answered.day()),
        MONTHS[answered.month0() as usize],
        answered.year()
    );
    assert!(journal.contains(&date), "{date}: {journal}");
    let (status, download) = request(&t.app, "POST", &access, Some(FORM), "download=1").await;
    assert_eq!(status, 200);
    assert!(
        download.starts_with("# Un petit cours — mes réponses\n"),
        "{download}"
    );
    e.absent_from("journal download", &download);

    // Unsubscribing: the page, the button, the goodbye mail.
    let unsubscribe = path_of(&t.app.links(ana.id, None).unsubscribe);
    let ask = page(
        "unsubscribe page",
        200,
        request(&t.app, "GET", &unsubscribe, None, "").await,
    );
    assert!(ask.contains("Se désinscrire\u{a0}?"), "{ask}");
    let done = page(
        "unsubscribed",
        200,
        request(&t.app, "POST", &unsubscribe, Some(FORM), "").await,
    );
    assert!(done.contains("Désinscription effectuée"), "{done}");
    tick(&t, Utc::now() + Days::seconds(1)).await;
    let goodbye = mail(&t, "-goodbye.eml", "ana@exemple.fr");
    goodbye.check("goodbye mail", &e);
    assert_eq!(goodbye.subject, "Vous avez quitté Un petit cours");

    // Links and addresses that lead nowhere.
    let broken = page(
        "broken link",
        404,
        request(&t.app, "GET", "/confirm/not-a-token", None, "").await,
    );
    assert!(broken.contains("Ce lien n'est pas valide."), "{broken}");
    let nowhere = page(
        "no page",
        404,
        request(&t.app, "GET", "/nulle-part", None, "").await,
    );
    assert!(
        nowhere.contains("Il n'y a pas de page à cette adresse."),
        "{nowhere}"
    );
}

async fn an_english_course_keeps_its_words_and_dates(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (status, index) = request(&t.app, "GET", "/courses/rebuilding-trust", None, "").await;
    assert_eq!(status, 200);
    assert!(index.contains("<html lang=\"en\">"));
    assert!(index.contains("How it goes") && index.contains("Send me the first lesson"));
    // The French fixture without its `language` is in English; its first lesson waits a
    // day, so confirming queues a welcome mail naming the time.
    let lessons = tempfile::tempdir().unwrap();
    let dir = lessons.path().join("short-course");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(repo("tests/fixtures/lessons/petit-cours")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("language = \"fr\"\n", "");
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    let lessons_dir = lessons.path().to_owned();
    let t = TestApp::builder(backend)
        .config(move |c| {
            c.course.lessons_dir = lessons_dir;
            c.course.default = "short-course".into();
        })
        .build()
        .await;
    request(
        &t.app,
        "POST",
        "/subscribe",
        Some(FORM),
        "email=ann%40example.com&name=Ann&timezone=Asia%2FTokyo",
    )
    .await;
    let ann = subscriber(&t, "ann@example.com").await;
    // Noon in Tokyo: the first lesson is tomorrow at 08:00, well over an hour away.
    let now = crate::support::at("2026-03-02T03:00:00Z");
    drip::subscriptions::confirm(
        &t.app,
        drip::subscriptions::ConfirmLink::Subscriber(ann.id),
        "test",
        now,
    )
    .await
    .unwrap();
    tick(&t, now).await;
    let welcome = mail(&t, "-welcome.eml", "ann@example.com");
    assert_eq!(welcome.subject, "You're in: Un petit cours");
    let due = db::enrollments::for_subscriber(&t.app.db, ann.id)
        .await
        .unwrap()[0]
        .next_due_at
        .unwrap();
    // The format drip wrote before its words moved to the catalogue, by chrono itself.
    let when = DateTime::from_timestamp(due, 0)
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .format("%A %-d %B at %H:%M (%Z)")
        .to_string();
    assert!(
        welcome
            .text
            .contains(&format!("the first one comes {when}.")),
        "{when}: {}",
        welcome.text
    );
    assert!(welcome.text.starts_with("Hi Ann,"), "{}", welcome.text);
    let (status, gone) = request(&t.app, "GET", "/confirm/not-a-token", None, "").await;
    assert_eq!(status, 404);
    assert!(gone.contains("<html lang=\"en\">") && gone.contains("This link is not valid."));
}
