//! The courses an instance hosts, as the CLI (`drip courses list`), the public index, the
//! admin's course switcher and `/api/v1/courses` show them: one summary, made here.

use serde::Serialize;

use crate::app::App;
use crate::db;

/// One course: what it is and how many take it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CourseSummary {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub evergreen: bool,
    /// Published lessons.
    pub lessons: i64,
    /// People taking it now (active or paused).
    pub enrolled: i64,
    pub completed: i64,
    pub phases: Vec<PhaseSummary>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhaseSummary {
    pub name: String,
    pub title: String,
    pub description: String,
}

/// Every course this instance serves, by slug.
pub async fn summaries(app: &App) -> anyhow::Result<Vec<CourseSummary>> {
    let courses = app.courses().await?;
    let counts = db::stats::course_counts(&app.db).await?;
    Ok(courses
        .into_iter()
        .map(|c| {
            let n = counts.get(&c.id).copied().unwrap_or_default();
            CourseSummary {
                phases: c
                    .phases
                    .iter()
                    .map(|p| PhaseSummary {
                        name: p.name.as_str().to_owned(),
                        title: p.title.clone(),
                        description: p.description.clone(),
                    })
                    .collect(),
                evergreen: c.is_evergreen(),
                slug: c.slug,
                title: c.title,
                description: c.description,
                lessons: n.lessons,
                enrolled: n.enrolled,
                completed: n.completed,
            }
        })
        .collect())
}
