//! Key rotation: after `secret_key` and `data_key` change (the old ones kept as previous
//! keys), old links, reply addresses and stored replies still work; `drip keys reseal`
//! seals every reply under the new key, after which the old keys can go. A reply no key
//! opens is reported and left exactly as it was.

use drip::app::App;
use drip::config::Config;
use drip::privacy::reseal::reseal_all;

use super::{answer, t0, with_lesson_sent};
use crate::on_both_databases;
use crate::support::{Backend, TestApp};

on_both_databases!(rotated_keys_keep_old_replies_readable_until_a_reseal_moves_them);

const OLD_SECRET: &str = "the secret key used before rotation";
const NEW_SECRET: &str = "the secret key used after rotation!";

/// These keys in a configuration.
fn keys(config: &mut Config, secret: &str, data: &str, previous: Option<(&str, &str)>) {
    config.security.secret_key = secret.into();
    config.security.data_key = data.into();
    config.security.previous_secret_keys = previous.map(|p| p.0.to_owned()).into_iter().collect();
    config.security.previous_data_keys = previous.map(|p| p.1.to_owned()).into_iter().collect();
}

/// The same database under other keys.
fn with_keys(t: &TestApp, secret: &str, data: &str, previous: Option<(&str, &str)>) -> App {
    t.another_process(|c| keys(c, secret, data, previous))
}

async fn sealed(app: &App) -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
    sqlx::query_as("SELECT id, text, raw FROM replies ORDER BY id")
        .fetch_all(app.db.pool())
        .await
        .unwrap()
}

fn opens(app: &App, bytes: &[u8]) -> Option<String> {
    app.vault
        .open(bytes)
        .ok()
        .map(|b| String::from_utf8(b).unwrap())
}

async fn rotated_keys_keep_old_replies_readable_until_a_reseal_moves_them(backend: Backend) {
    let t = TestApp::builder(backend)
        .config(|c| keys(c, OLD_SECRET, "the old data key", None))
        .build()
        .await;
    let before = t.app.clone();
    let (_, delivery) = with_lesson_sent(&t, "ann@example.com").await;
    let first = answer(
        &before,
        "ann@example.com",
        delivery,
        "I said it out loud.",
        t0(),
    )
    .await;

    // Rotation: both keys replaced, the old ones kept as previous.
    let after = with_keys(
        &t,
        NEW_SECRET,
        "the new data key",
        Some((OLD_SECRET, "the old data key")),
    );
    assert_ne!(
        after.reply_address(delivery),
        before.reply_address(delivery)
    );
    // A reply to a mail sent before the rotation still finds its lesson by its token.
    let second = answer(
        &after,
        "ann@example.com",
        delivery,
        "And again today.",
        t0(),
    )
    .await;
    let (stored_by,): (String,) = sqlx::query_as("SELECT matched_by FROM replies WHERE id = $1")
        .bind(second)
        .fetch_one(after.db.pool())
        .await
        .unwrap();
    assert_eq!(stored_by, "token");
    // One more, sealed under a key nobody configured any more (a lost key).
    let lost = with_keys(&t, NEW_SECRET, "a key that was lost", None);
    let third = answer(
        &lost,
        "ann@example.com",
        delivery,
        "Sealed under a lost key.",
        t0(),
    )
    .await;

    let rows = sealed(&after).await;
    assert_eq!(
        opens(&after, &rows[0].1).as_deref(),
        Some("I said it out loud.")
    );
    assert_eq!(
        opens(&after, &rows[1].1).as_deref(),
        Some("And again today.")
    );
    assert_eq!(opens(&after, &rows[2].1), None);
    let new_only = with_keys(&t, NEW_SECRET, "the new data key", None);
    assert_eq!(
        opens(&new_only, &rows[0].1),
        None,
        "not yet under the new key"
    );

    let report = reseal_all(&after.db, &after.vault).await.unwrap();
    assert_eq!(report.checked, 3);
    assert_eq!(
        report.resealed, 1,
        "only the reply sealed under the old key"
    );
    assert_eq!(report.unreadable, vec![third]);
    let resealed = sealed(&after).await;
    assert_eq!(
        resealed[2], rows[2],
        "the unreadable reply is left exactly as it was"
    );
    for (id, text, raw) in &resealed[..2] {
        assert!(
            opens(&new_only, text).is_some(),
            "reply {id} opens under the new key alone"
        );
        let raw = raw.as_deref().expect("raw message kept");
        assert!(
            opens(&new_only, raw).unwrap().contains("Message-ID"),
            "reply {id}'s raw message too"
        );
    }
    assert_eq!(resealed[0].0, first);
    assert_eq!(
        opens(&new_only, &resealed[0].1).as_deref(),
        Some("I said it out loud.")
    );
    // Running it again changes nothing.
    let again = reseal_all(&after.db, &after.vault).await.unwrap();
    assert_eq!((again.resealed, again.unreadable.len()), (0, 1));
    assert_eq!(sealed(&after).await, resealed);
}
