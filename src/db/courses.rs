//! Queries on `courses`.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::curriculum::CourseFile;
use crate::domain::{Language, Phases, SendWindow};

/// A course as last synced from its folder. The window and the phases are parsed when the
/// row is read: a stored value that does not parse is an error, not a default.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct CourseRow {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub from_name: String,
    #[sqlx(try_from = "String")]
    pub send_window: SendWindow,
    #[sqlx(try_from = "String")]
    pub phases: Phases,
    pub footer: String,
    /// The language of drip's own words for this course.
    #[sqlx(try_from = "String")]
    pub language: Language,
    pub source: String,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, slug, title, description, from_name, send_window, phases, footer, language, source, updated_at";

pub async fn by_slug(db: &Db, slug: &str) -> anyhow::Result<Option<CourseRow>> {
    let sql = format!("SELECT {COLUMNS} FROM courses WHERE slug = $1");
    Ok(sqlx::query_as(&sql)
        .bind(slug)
        .fetch_optional(db.pool())
        .await?)
}

pub async fn by_id(db: &Db, id: i64) -> anyhow::Result<CourseRow> {
    let sql = format!("SELECT {COLUMNS} FROM courses WHERE id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_one(db.pool()).await?)
}

pub(crate) async fn by_id_in(tx: &mut Tx, id: i64) -> anyhow::Result<CourseRow> {
    let sql = format!("SELECT {COLUMNS} FROM courses WHERE id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_one(&mut **tx).await?)
}

/// Inserts or updates the course from its file; returns its id.
pub(crate) async fn upsert(tx: &mut Tx, course: &CourseFile, now: i64) -> anyhow::Result<i64> {
    let phases = serde_json::to_string(&course.phases)?;
    let existing: Option<(i64,)> = sqlx::query_as("SELECT id FROM courses WHERE slug = $1")
        .bind(course.slug.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    if let Some((id,)) = existing {
        sqlx::query(
            "UPDATE courses SET title = $1, description = $2, from_name = $3, send_window = $4, phases = $5, source = $6, updated_at = $7, footer = $9, language = $10 WHERE id = $8",
        )
        .bind(&course.title)
        .bind(&course.description)
        .bind(&course.from)
        .bind(course.send_window.as_str())
        .bind(&phases)
        .bind(&course.source)
        .bind(now)
        .bind(id)
        .bind(&course.footer)
        .bind(course.language.as_str())
        .execute(&mut **tx)
        .await?;
        return Ok(id);
    }
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO courses (slug, title, description, from_name, send_window, phases, source, updated_at, footer, language) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(course.slug.as_str())
    .bind(&course.title)
    .bind(&course.description)
    .bind(&course.from)
    .bind(course.send_window.as_str())
    .bind(&phases)
    .bind(&course.source)
    .bind(now)
    .bind(&course.footer)
    .bind(course.language.as_str())
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}
