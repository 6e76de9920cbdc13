//! Rendering speed: a lesson mail (minijinja + Markdown + the layout with its CSS inlined)
//! for a different subscriber each time, as the sender does it. The target is over 20,000
//! mails per second per core (criterion runs on one thread, so its rate is per core).
//!
//!     cargo bench --bench render

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use drip::curriculum::{self, CourseDir};
use drip::render::{CourseVars, LessonVars, Links, MailContext, Renderer, SubscriberVars};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn course() -> CourseDir {
    curriculum::load_dir(&repo("lessons/rebuilding-trust")).expect("the shipped course lints")
}

/// The context of subscriber `i`: every per-subscriber value differs from one mail to the
/// next, so no cache keyed on the subscriber could make the figure look better.
fn context(course: &CourseDir, i: u64) -> MailContext {
    let token = format!(
        "{i:x}-{:032x}",
        u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    );
    MailContext {
        subscriber: SubscriberVars::new(
            &format!("Reader{i} Example"),
            &format!("reader{i}@example.com"),
            "Europe/Paris",
            "there",
        ),
        course: CourseVars {
            title: course.course.title.clone(),
            description: course.course.description.clone(),
            footer: course.course.footer.clone(),
            language: course.course.language.to_string(),
        },
        links: Links {
            unsubscribe: format!("https://course.example.org/unsubscribe/{token}"),
            preferences: format!("https://course.example.org/preferences/{token}"),
            journal: format!("https://course.example.org/journal/{token}"),
        },
    }
}

fn vars(course: &CourseDir, index: usize) -> LessonVars {
    let lesson = &course.lessons[index];
    LessonVars {
        title: lesson.content.title.clone(),
        number: index + 1,
        of: course.lessons.len(),
        phase: course
            .course
            .phases
            .get(&lesson.content.phase)
            .expect("a declared phase")
            .title
            .clone(),
    }
}

fn render(c: &mut Criterion) {
    let course = course();
    let renderer = Renderer::load(&repo("templates")).expect("templates load");
    let first = vars(&course, 0);
    let all: Vec<LessonVars> = (0..course.lessons.len())
        .map(|i| vars(&course, i))
        .collect();

    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function("first_lesson", |b| {
        b.iter(|| {
            i += 1;
            let ctx = context(&course, i);
            black_box(
                renderer
                    .lesson(&course.lessons[0].content, &first, &ctx)
                    .unwrap(),
            )
        })
    });
    let mut i = 0u64;
    group.bench_function("every_lesson_in_turn", |b| {
        b.iter(|| {
            i += 1;
            let n = (i as usize) % course.lessons.len();
            let ctx = context(&course, i);
            black_box(
                renderer
                    .lesson(&course.lessons[n].content, &all[n], &ctx)
                    .unwrap(),
            )
        })
    });
    // A first name outside the fast path's alphabet takes the full pipeline (the lesson's
    // template still parsed once): what a mail to "O'Brien" costs.
    let mut i = 0u64;
    group.bench_function("first_lesson_full_pipeline", |b| {
        b.iter(|| {
            i += 1;
            let mut ctx = context(&course, i);
            ctx.subscriber = SubscriberVars::new(
                "O'Brien",
                &format!("ob{i}@example.com"),
                "Europe/Dublin",
                "there",
            );
            black_box(
                renderer
                    .lesson(&course.lessons[0].content, &first, &ctx)
                    .unwrap(),
            )
        })
    });
    // What the sender does next with a rendered mail: the MIME message as sent (lettre's
    // builder, quoted-printable bodies), for comparison with rendering itself.
    let config =
        drip::config::Config::from_toml_str(&std::fs::read_to_string(repo("config.toml")).unwrap())
            .unwrap();
    let mut config = config;
    config.mail.outbox_dir = std::env::temp_dir().join("drip-render-bench-outbox");
    let mailer = drip::mailer::Mailer::from_config(&config).unwrap();
    let mut i = 0u64;
    group.bench_function("first_lesson_rendered_and_built_as_mime", |b| {
        b.iter(|| {
            i += 1;
            let ctx = context(&course, i);
            let mail = renderer
                .lesson(&course.lessons[0].content, &first, &ctx)
                .unwrap();
            let out = drip::mailer::Outgoing {
                file_label: format!("{i}"),
                to_name: "Reader Example".into(),
                to: ctx.subscriber.email.clone(),
                subject: mail.subject,
                html: mail.html,
                text: mail.text,
                message_id: format!("drip.{i}@example.org"),
                reply_to: Some(format!("reply+{i}@example.org")),
                unsubscribe: Some((
                    ctx.links.unsubscribe.clone(),
                    format!("mailto:reply+{i}@example.org"),
                )),
                course: Some("rebuilding-trust".into()),
                lesson: Some("before-we-begin".into()),
                broadcast: None,
                from_name: None,
                from_address: None,
                list_id: None,
                answer: None,
            };
            black_box(mailer.build(&out).unwrap().formatted())
        })
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
