//! Reading a course folder: `course.toml` and every `NN-slug.md`, each parsed on its own,
//! then the rules across files (numbers, slugs, declared phases in their order).

use std::collections::HashMap;
use std::path::Path;

use super::CourseDir;
use super::parse::{parse_course, parse_lesson};
use super::problem::Problem;

/// Every course under `lessons_dir`: each folder holding a `course.toml`, by folder name.
/// Folders without one are not courses (a README, drafts) and are left alone.
pub fn course_dirs(lessons_dir: &Path) -> Result<Vec<std::path::PathBuf>, Problem> {
    let entries = std::fs::read_dir(lessons_dir).map_err(|e| {
        Problem::new(1, format!("cannot read the lessons folder: {e}"))
            .in_file(&lessons_dir.display().to_string())
    })?;
    let mut dirs: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join("course.toml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Two course folders whose names differ only in case would be one slug on a filesystem
/// that ignores case, and one URL: each is named as a duplicate.
pub fn duplicate_slugs(dirs: &[std::path::PathBuf]) -> Vec<Problem> {
    let mut seen: HashMap<String, &std::path::Path> = HashMap::new();
    let mut problems = Vec::new();
    for dir in dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(first) = seen.insert(name.to_lowercase(), dir) {
            problems.push(
                Problem::new(
                    1,
                    format!(
                        "duplicate course slug {:?} (also {})",
                        name.to_lowercase(),
                        first.display()
                    ),
                )
                .in_file(&dir.join("course.toml").display().to_string()),
            );
        }
    }
    problems
}

/// Lints a whole course folder: each file, then the rules across files.
pub fn load_dir(dir: &Path) -> Result<CourseDir, Vec<Problem>> {
    let shown = |name: &str| dir.join(name).display().to_string();
    let mut problems = Vec::new();
    let course_path = dir.join("course.toml");
    let slug = dir.file_name().and_then(|s| s.to_str()).unwrap_or("");
    let course = match std::fs::read_to_string(&course_path) {
        Ok(text) => parse_course(slug, &text)
            .map_err(|ps| problems.extend(ps.into_iter().map(|p| p.in_file(&shown("course.toml")))))
            .ok(),
        Err(e) => {
            problems
                .push(Problem::new(1, format!("cannot read: {e}")).in_file(&shown("course.toml")));
            None
        }
    };
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.ends_with(".md"))
            .collect(),
        Err(e) => {
            problems.push(
                Problem::new(1, format!("cannot read the folder: {e}"))
                    .in_file(&dir.display().to_string()),
            );
            return Err(problems);
        }
    };
    names.sort();
    let mut lessons = Vec::new();
    for name in &names {
        let text = match std::fs::read(dir.join(name)).map(String::from_utf8) {
            Ok(Ok(text)) => text,
            Ok(Err(_)) => {
                problems.push(Problem::new(1, "is not UTF-8 text").in_file(&shown(name)));
                continue;
            }
            Err(e) => {
                problems.push(Problem::new(1, format!("cannot read: {e}")).in_file(&shown(name)));
                continue;
            }
        };
        match parse_lesson(name, &text) {
            Ok(l) => lessons.push(l),
            Err(ps) => problems.extend(ps.into_iter().map(|p| p.in_file(&shown(name)))),
        }
    }
    lessons.sort_by_key(|l| l.number);
    let mut numbers: HashMap<u32, &str> = HashMap::new();
    let mut slugs: HashMap<&str, &str> = HashMap::new();
    for l in &lessons {
        if let Some(first) = numbers.insert(l.number, &l.file_name) {
            problems.push(
                Problem::new(
                    1,
                    format!("duplicate lesson number {} (also {first})", l.number),
                )
                .in_file(&shown(&l.file_name)),
            );
        }
        if let Some(first) = slugs.insert(l.slug.as_str(), &l.file_name) {
            problems.push(
                Problem::new(
                    1,
                    format!("duplicate slug {:?} (also {first})", l.slug.as_str()),
                )
                .in_file(&shown(&l.file_name)),
            );
        }
    }
    if let Some(course) = &course {
        let phases = &course.phases;
        for l in &lessons {
            if let Err(e) = phases.check(&l.content.phase) {
                problems.push(
                    Problem::new(phase_line(&l.source), e.message).in_file(&shown(&l.file_name)),
                );
            }
        }
        for pair in lessons.windows(2) {
            let (prev, next) = (&pair[0], &pair[1]);
            if phases.out_of_order(&prev.content.phase, &next.content.phase) {
                problems.push(
                    Problem::new(
                        phase_line(&next.source),
                        format!(
                            "phase {:?} comes after {:?} in {}: {}",
                            next.content.phase.as_str(),
                            prev.content.phase.as_str(),
                            prev.file_name,
                            phases.order_message()
                        ),
                    )
                    .in_file(&shown(&next.file_name)),
                );
            }
        }
    }
    match (problems.is_empty(), course) {
        (true, Some(course)) => Ok(CourseDir {
            dir: dir.to_owned(),
            course,
            lessons,
        }),
        _ => Err(problems),
    }
}

fn phase_line(source: &str) -> usize {
    source
        .lines()
        .position(|l| l.trim_start().starts_with("phase"))
        .map(|i| i + 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod slug_tests {
    use super::*;

    #[test]
    fn folders_that_differ_only_in_case_are_one_slug_twice() {
        let dirs = [
            std::path::PathBuf::from("lessons/first-steps"),
            std::path::PathBuf::from("lessons/other"),
            std::path::PathBuf::from("lessons/First-Steps"),
        ];
        let problems = duplicate_slugs(&dirs);
        assert_eq!(problems.len(), 1);
        let shown = problems[0].to_string();
        assert!(
            shown.starts_with(
                "lessons/First-Steps/course.toml:1: duplicate course slug \"first-steps\""
            ),
            "{shown}"
        );
    }
}
