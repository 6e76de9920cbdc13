//! The lesson pages: editing with preview and lint, revisions, revert, the schedule impact
//! confirmation, adding, reordering, unpublishing and the test send.

use chrono::Utc;
use drip::db;

use super::*;
use crate::on_both_databases;
use crate::support::Backend;

on_both_databases!(
    saving_a_lesson_adds_a_revision_and_an_invalid_one_is_refused_beside_its_field,
    reverting_adds_a_revision_equal_to_the_old_one_and_history_shows_the_diff,
    a_schedule_change_shows_who_it_reaches_before_it_moves_their_next_lesson,
    lessons_can_be_added_reordered_unpublished_and_sent_as_a_test,
);

fn edit_form<'a>(l: &'a db::lessons::Lesson, rev: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("title", &l.content.title),
        ("subject", &l.content.subject),
        ("phase", l.content.phase.as_str()),
        (
            "send_window",
            l.content.send_window.as_ref().map_or("", |w| w.as_str()),
        ),
        ("prompt", &l.content.prompt),
        ("body", &l.content.body),
        ("base_revision", rev),
    ]
}

fn with<'a>(
    mut f: Vec<(&'a str, &'a str)>,
    key: &'a str,
    value: &'a str,
) -> Vec<(&'a str, &'a str)> {
    f.retain(|(k, _)| *k != key);
    f.push((key, value));
    f
}

async fn saving_a_lesson_adds_a_revision_and_an_invalid_one_is_refused_beside_its_field(
    backend: Backend,
) {
    let t = admin_app(backend).await;
    let session = sign_in(&t.app).await;
    let l = lesson(&t, "a-clean-slate").await;
    let days = l.content.after_days.to_string();
    let base = with(edit_form(&l, "1"), "after_days", &days);
    // Preview renders the exact mail and stores nothing.
    let r = session
        .post(
            &t.app,
            "/admin/lessons/a-clean-slate/preview",
            &with(base.clone(), "subject", "Day 2 · A fresh subject"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Day 2 · A fresh subject")
            && r.body.contains("srcdoc=\"&lt;!DOCTYPE html&gt;"),
        "{}",
        r.body
    );
    assert_eq!(lesson(&t, "a-clean-slate").await.revision, 1);
    // Invalid: every problem beside its field, nothing saved.
    let bad = with(
        with(
            with(base.clone(), "prompt", "  "),
            "send_window",
            "every morning",
        ),
        "body",
        "Hi {{ subscriber.last_name }}",
    );
    let r = session
        .post(&t.app, "/admin/lessons/a-clean-slate", &bad)
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    for id in ["prompt-error", "send_window-error", "body-error"] {
        assert!(
            r.body.contains(&format!("id=\"{id}\"")),
            "{id} missing:\n{}",
            r.body
        );
    }
    assert!(
        r.body.contains("subscriber.last_name"),
        "the body error names the variable"
    );
    assert!(
        r.body.contains("every morning"),
        "the form comes back as typed"
    );
    assert_eq!(lesson(&t, "a-clean-slate").await.revision, 1);
    // Valid: a new revision by the admin, noting what changed.
    let good = with(
        with(base.clone(), "subject", "Day 2 · A fresh subject"),
        "body",
        "Hello {{ subscriber.first_name }},\r\n\r\nA new body.\r\n",
    );
    let r = session
        .post(&t.app, "/admin/lessons/a-clean-slate", &good)
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let after = lesson(&t, "a-clean-slate").await;
    assert_eq!(after.revision, 2);
    assert_eq!(after.author, USER);
    assert_eq!(after.content.subject, "Day 2 · A fresh subject");
    assert_eq!(
        after.content.body, "Hello {{ subscriber.first_name }},\n\nA new body.\n",
        "CRLF from the browser is stored as LF"
    );
    let revs = db::lessons::revisions(&t.app.db, after.id).await.unwrap();
    assert_eq!(revs[0].note, "changed subject, body");
    assert_eq!(
        drip::curriculum::parse_lesson("02-a-clean-slate.md", &revs[0].source)
            .unwrap()
            .content,
        after.content
    );
    // A form based on an old revision is refused rather than overwriting the new one.
    let r = session
        .post(
            &t.app,
            "/admin/lessons/a-clean-slate",
            &with(base, "title", "Stale"),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(lesson(&t, "a-clean-slate").await.revision, 2);
    // The editor shows the saved state.
    let page = session
        .get(&t.app, "/admin/lessons/a-clean-slate?done=saved")
        .await;
    assert!(page.body.contains("Saved as a new revision") && page.body.contains("A fresh subject"));
}

async fn reverting_adds_a_revision_equal_to_the_old_one_and_history_shows_the_diff(
    backend: Backend,
) {
    let t = admin_app(backend).await;
    let session = sign_in(&t.app).await;
    let l = lesson(&t, "a-clean-slate").await;
    let days = l.content.after_days.to_string();
    let f = with(
        with(edit_form(&l, "1"), "after_days", &days),
        "subject",
        "Changed subject",
    );
    assert_eq!(
        session
            .post(&t.app, "/admin/lessons/a-clean-slate", &f)
            .await
            .status,
        303
    );
    let history = session
        .get(&t.app, "/admin/lessons/a-clean-slate/revisions")
        .await;
    assert_eq!(history.status, 200);
    assert!(
        history.body.contains("id=\"revision-2\"") && history.body.contains("id=\"diff\""),
        "{}",
        history.body
    );
    assert!(
        history.body.contains("<tr class=\"delete\">") && history.body.contains("Changed subject"),
        "{}",
        history.body
    );
    let r = session
        .post(
            &t.app,
            "/admin/lessons/a-clean-slate/revert",
            &[("revision", "1")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let now = lesson(&t, "a-clean-slate").await;
    assert_eq!(now.revision, 3);
    assert_eq!(now.content, l.content);
    let revs = db::lessons::revisions(&t.app.db, now.id).await.unwrap();
    assert_eq!(
        (revs[0].note.as_str(), revs[0].author.as_str()),
        ("revert to revision 1", USER)
    );
    let same = session
        .get(&t.app, "/admin/lessons/a-clean-slate/revisions?a=1&b=3")
        .await;
    assert!(
        same.body.contains("The two revisions are the same"),
        "{}",
        same.body
    );
}

async fn a_schedule_change_shows_who_it_reaches_before_it_moves_their_next_lesson(
    backend: Backend,
) {
    let t = admin_app(backend).await;
    let s = enrolled(&t, "bob@example.com", "Bob").await;
    // Lesson 1 goes at once; lesson 2 is then planned.
    drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let before = db::enrollments::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap()[0]
        .clone();
    assert_eq!(before.position, 1);
    let was = before.next_due_at.expect("lesson 2 planned");
    let session = sign_in(&t.app).await;
    let l = lesson(&t, "a-clean-slate").await;
    let days = (l.content.after_days + 3).to_string();
    let f = with(edit_form(&l, "1"), "after_days", &days);
    let r = session
        .post(&t.app, "/admin/lessons/a-clean-slate", &f)
        .await;
    assert_eq!(r.status, 200, "a confirmation first: {}", r.body);
    assert!(
        r.body.contains(
            "<strong id=\"affected\">1</strong> active subscriber(s) will receive this lesson next"
        ),
        "{}",
        r.body
    );
    assert_eq!(
        lesson(&t, "a-clean-slate").await.revision,
        1,
        "not saved before confirming"
    );
    assert_eq!(
        db::enrollments::for_subscriber(&t.app.db, s.id)
            .await
            .unwrap()[0]
            .next_due_at,
        Some(was)
    );
    let r = session
        .post(
            &t.app,
            "/admin/lessons/a-clean-slate",
            &with(f, "confirmed", "1"),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        lesson(&t, "a-clean-slate").await.content.after_days,
        l.content.after_days + 3
    );
    let due = db::enrollments::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap()[0]
        .next_due_at
        .unwrap();
    // Three days later (give or take a daylight-saving hour).
    assert!(
        (due - was - 3 * 86_400).abs() <= 3600,
        "was {was}, now {due}"
    );
}

async fn lessons_can_be_added_reordered_unpublished_and_sent_as_a_test(backend: Backend) {
    let t = admin_app(backend).await;
    let session = sign_in(&t.app).await;
    let list = session.get(&t.app, "/admin/lessons").await;
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains("Before we begin") && list.body.contains("Honesty"),
        "{}",
        list.body
    );
    // Add: at the end, as a draft.
    let new = [
        ("slug", "one-more"),
        ("title", "One more"),
        ("subject", "Bonus"),
        ("phase", "follow-up"),
        ("after_days", "2"),
        ("prompt", "What now?"),
        ("body", "Hello {{ subscriber.first_name }}."),
    ];
    let r = session.post(&t.app, "/admin/lessons/new", &new).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let added = lesson(&t, "one-more").await;
    let course = t.app.course(None).await.unwrap();
    let all = db::lessons::list(&t.app.db, course.id).await.unwrap();
    assert_eq!(
        added.position,
        all.iter().map(|l| l.position).max().unwrap()
    );
    assert_eq!(added.status.as_str(), "draft");
    let r = session
        .post(
            &t.app,
            "/admin/lessons/new",
            &[
                ("slug", "one-more"),
                ("title", "x"),
                ("subject", "x"),
                ("phase", "honesty"),
                ("after_days", "1"),
                ("prompt", "x"),
                ("body", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("a lesson with this name exists") && r.body.contains("phases go honesty"),
        "{}",
        r.body
    );
    // Publish, then move it up one place (confirmed), then unpublish.
    assert_eq!(
        session
            .post(
                &t.app,
                "/admin/lessons/one-more/status",
                &[("status", "published")]
            )
            .await
            .status,
        303
    );
    assert_eq!(lesson(&t, "one-more").await.status.as_str(), "published");
    let before_last = all[all.len() - 2].clone();
    let r = session
        .post(
            &t.app,
            "/admin/lessons/one-more/move",
            &[("direction", "up")],
        )
        .await;
    assert_eq!(r.status, 200, "a confirmation first");
    assert_eq!(lesson(&t, "one-more").await.position, added.position);
    let r = session
        .post(
            &t.app,
            "/admin/lessons/one-more/move",
            &[("direction", "up"), ("confirmed", "1")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(lesson(&t, "one-more").await.position, before_last.position);
    assert_eq!(lesson(&t, &before_last.slug).await.position, added.position);
    let r = session
        .post(
            &t.app,
            "/admin/lessons/before-we-begin/move",
            &[("direction", "up")],
        )
        .await;
    assert_eq!(r.status, 422, "the first lesson cannot go up");
    assert_eq!(
        session
            .post(
                &t.app,
                "/admin/lessons/one-more/status",
                &[("status", "draft")]
            )
            .await
            .status,
        303
    );
    assert_eq!(lesson(&t, "one-more").await.status.as_str(), "draft");
    // Send me a test: to the admin's address, through the configured transport.
    let r = session
        .post(&t.app, "/admin/lessons/before-we-begin/test", &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let mails = t.outbox();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].1.contains("To: ann <ann@example.org>")
            && mails[0].1.contains("Subject: [Test] Lesson 1"),
        "{}",
        mails[0].1
    );
}
