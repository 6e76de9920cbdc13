//! Files to database (`drip lessons sync`) and back (`drip lessons export`).
//!
//! Each lesson remembers the revision and file hash of its last sync. A changed file makes
//! a new revision only while nobody edited the lesson in the database since; otherwise the
//! sync reports a conflict and leaves the admin's edit alone (unless forced). Revisions keep
//! the file's bytes, so an export writes back exactly what was synced.

use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::CourseDir;
use crate::db::{self, Db};
use crate::domain::LessonStatus;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SyncOutcome {
    Created,
    Updated {
        revision: i64,
    },
    Unchanged,
    /// The file is unchanged but the database has newer edits (export them to keep them in git).
    DatabaseAhead {
        revision: i64,
        author: String,
    },
    /// Both changed: the database edit is kept.
    Conflict {
        revision: i64,
        author: String,
    },
    /// Both changed and --force: the file replaced the database edit (which stays in history).
    Forced {
        revision: i64,
    },
    /// In the database but no longer in the folder: kept, since deliveries refer to it.
    NotInFiles,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncReport {
    pub course_id: i64,
    /// The course's slug.
    pub course: String,
    pub lessons: Vec<(String, SyncOutcome)>,
}

impl SyncReport {
    pub fn conflicts(&self) -> usize {
        self.lessons
            .iter()
            .filter(|(_, o)| matches!(o, SyncOutcome::Conflict { .. }))
            .count()
    }
}

pub(crate) fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Loads a linted course folder into the database, in one transaction.
pub async fn sync_course(
    db: &Db,
    dir: &CourseDir,
    force: bool,
    now: i64,
) -> anyhow::Result<SyncReport> {
    let mut tx = db.begin_write().await?;
    let course_id = db::courses::upsert(&mut tx, &dir.course, now).await?;
    let existing = db::lessons::list_in(&mut tx, course_id).await?;
    let mut report = Vec::new();
    // (old position, new position) of every lesson this sync renumbers.
    let mut moves = Vec::new();
    for file in &dir.lessons {
        let file_hash = hash(&file.source);
        let slug = file.slug.as_str();
        let position = i64::from(file.number);
        let Some(current) = existing.iter().find(|l| l.slug == slug) else {
            let new = db::lessons::NewLesson {
                course_id,
                slug,
                position,
                status: LessonStatus::Published,
                file_name: &file.file_name,
                content: &file.content,
                source: &file.source,
                author: "file",
            };
            let id = db::lessons::insert(&mut tx, &new, now).await?;
            db::lessons::mark_synced(&mut tx, id, 1, &file_hash).await?;
            db::events::log(
                &mut tx,
                None,
                "file",
                "lesson_created",
                &serde_json::json!({"lesson": slug}),
                now,
            )
            .await?;
            report.push((slug.to_owned(), SyncOutcome::Created));
            continue;
        };
        let edited_since_sync = current.synced_revision != Some(current.revision);
        let outcome = if current.synced_hash.as_deref() == Some(file_hash.as_str()) {
            if edited_since_sync {
                SyncOutcome::DatabaseAhead {
                    revision: current.revision,
                    author: current.author.clone(),
                }
            } else {
                SyncOutcome::Unchanged
            }
        } else if current.source == file.source {
            db::lessons::mark_synced(&mut tx, current.id, current.revision, &file_hash).await?;
            SyncOutcome::Unchanged
        } else if edited_since_sync && !force {
            SyncOutcome::Conflict {
                revision: current.revision,
                author: current.author.clone(),
            }
        } else {
            let revision = current.revision + 1;
            let note = if edited_since_sync {
                "file sync (forced over a database edit)"
            } else {
                "file sync"
            };
            db::lessons::insert_revision(
                &mut tx,
                current.id,
                revision,
                &file.content,
                &file.source,
                "file",
                note,
                now,
            )
            .await?;
            db::lessons::mark_synced(&mut tx, current.id, revision, &file_hash).await?;
            db::events::log(
                &mut tx,
                None,
                "file",
                "lesson_revised",
                &serde_json::json!({"lesson": slug, "revision": revision}),
                now,
            )
            .await?;
            if edited_since_sync {
                SyncOutcome::Forced { revision }
            } else {
                SyncOutcome::Updated { revision }
            }
        };
        // The file's number decides the position when the file's text changed (or with
        // --force): a reorder made in the admin UI survives syncs of untouched files until it
        // is exported. Renumbering files without editing them needs --force.
        let file_changed = force || current.synced_hash.as_deref() != Some(file_hash.as_str());
        if matches!(
            outcome,
            SyncOutcome::Updated { .. } | SyncOutcome::Forced { .. } | SyncOutcome::Unchanged
        ) && file_changed
            && current.position != position
        {
            db::lessons::set_position(&mut tx, current.id, position, &file.file_name).await?;
            moves.push((current.position, position));
        }
        report.push((slug.to_owned(), outcome));
    }
    for lesson in &existing {
        if !dir.lessons.iter().any(|f| f.slug.as_str() == lesson.slug) {
            report.push((lesson.slug.clone(), SyncOutcome::NotInFiles));
        }
    }
    // A person's place is the position of the last lesson they were given: it moves with
    // that lesson, or the lesson now at their old number (one they may have had) would be
    // planned next and they would wait forever. New lessons numbered before their place are
    // not sent to them; those after it are.
    db::enrollments::move_positions(&mut tx, course_id, &moves, now).await?;
    // An evergreen course's new lessons reach the people who had reached the end.
    let at = chrono::DateTime::from_timestamp(now, 0).context("sync time out of range")?;
    crate::subscriptions::release_caught_up(&mut tx, course_id, at).await?;
    tx.commit().await?;
    Ok(SyncReport {
        course_id,
        course: dir.course.slug.as_str().to_owned(),
        lessons: report,
    })
}

/// Writes the database's course and lessons into `dir` as files; returns the files written.
/// Lessons synced from files come back byte for byte.
pub async fn export_course(db: &Db, slug: &str, dir: &Path) -> anyhow::Result<Vec<String>> {
    let course = db::courses::by_slug(db, slug).await?.with_context(|| {
        format!("no course {slug:?} in the database; run `drip lessons sync` first")
    })?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    write_if_changed(&dir.join("course.toml"), &course.source)?;
    written.push("course.toml".to_owned());
    let lessons = db::lessons::list(db, course.id).await?;
    let mut tx = db.begin_write().await?;
    for lesson in &lessons {
        let name = format!("{:02}-{}.md", lesson.position, lesson.slug);
        if name != lesson.file_name {
            let old = dir.join(&lesson.file_name);
            if old.exists() {
                std::fs::remove_file(&old)
                    .with_context(|| format!("removing {}", old.display()))?;
            }
        }
        write_if_changed(&dir.join(&name), &lesson.source)?;
        db::lessons::set_position(&mut tx, lesson.id, lesson.position, &name).await?;
        db::lessons::mark_synced(&mut tx, lesson.id, lesson.revision, &hash(&lesson.source))
            .await?;
        written.push(name);
    }
    tx.commit().await?;
    Ok(written)
}

fn write_if_changed(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(text.as_bytes()) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp-drip");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
