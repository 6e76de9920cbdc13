//! The running application: configuration, database, templates, signer and mailer, built
//! once and shared by the web app, the scheduler, the sender and the CLI.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::curriculum;
use crate::db::{self, Db};
use crate::domain::{Purpose, Signer};
use crate::mailer::Mailer;
use crate::render::{CourseVars, Links, MailContext, Renderer, SubscriberVars};

/// Why a caller's course could not be found: the one refusal the web answers with 422
/// naming `course`, and the CLI with the list of slugs.
#[derive(Debug, thiserror::Error)]
pub enum CourseChoice {
    #[error("course: there is no course {slug:?} (the courses are: {})", known.join(", "))]
    Unknown { slug: String, known: Vec<String> },
    #[error("course: this drip has several courses; name one with --course (one of: {}) or set [course] default", known.join(", "))]
    NotSaid { known: Vec<String> },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

#[derive(Clone, Debug)]
pub struct App {
    pub config: Arc<Config>,
    pub db: Db,
    pub renderer: Renderer,
    pub signer: Signer,
    pub mailer: Mailer,
    pub vault: crate::crypto::Vault,
    /// Names this process in delivery leases.
    pub worker_id: String,
    /// Cancelled on shutdown, the one signal every task obeys: the tick loop stops, the web
    /// server finishes its requests, the sender finishes its batch and takes no more, the
    /// inbound listener turns new mail away with 421.
    pub shutdown: CancellationToken,
    /// The sender's rate limits (`[smtp] max_per_second`, `max_connections_per_domain`).
    pub limiter: Arc<crate::outbox::ratelimit::Limiter>,
    /// Whether the SMTP server could be reached last time; holds the queue while it cannot.
    pub relay: Arc<crate::outbox::relay::RelayGate>,
    /// When this process last ran the retention sweep: the tick loop sweeps at most hourly.
    pub(crate) sweeper: Arc<crate::privacy::Sweeper>,
    /// `[server] trusted_proxies`, read once (see `web::client`).
    pub(crate) trusted_proxies: Arc<[crate::domain::IpNet]>,
    /// This process's count of sign-ups per client, and the sign-up figures of `/metrics`.
    pub signups: Arc<crate::subscriptions::flood::SignupGuard>,
}

impl App {
    /// Connects, migrates and loads templates: everything a command needs.
    pub async fn start(config: Config) -> anyhow::Result<App> {
        let db = Db::connect(&config.database.url, config.database.max_connections).await?;
        db.migrate().await?;
        Self::with_db(config, db)
    }

    pub fn with_db(config: Config, db: Db) -> anyhow::Result<App> {
        let renderer = Renderer::load(&config.course.templates_dir)?;
        let signer = Signer::new(&config.security.secret_key)
            .with_previous(&config.security.previous_secret_keys);
        let mailer = Mailer::from_config(&config)?;
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let worker_id = format!(
            "{}:{}:{:08x}",
            host.trim(),
            std::process::id(),
            rand::random::<u32>()
        );
        let vault =
            crate::crypto::Vault::new(&config.security.data_key, &config.security.secret_key)
                .with_previous(
                    &config.security.previous_data_keys,
                    &config.security.previous_secret_keys,
                );
        let limiter = crate::outbox::ratelimit::Limiter::new(
            config.smtp.max_per_second,
            config.smtp.max_connections_per_domain,
        );
        let trusted_proxies = config
            .server
            .proxies()
            .map_err(|m| anyhow::anyhow!("configuration key `server.trusted_proxies`: {m}"))?;
        let signups =
            crate::subscriptions::flood::SignupGuard::new(config.public.signups_per_ip_per_hour);
        Ok(App {
            trusted_proxies: trusted_proxies.into(),
            signups: Arc::new(signups),
            limiter: Arc::new(limiter),
            relay: Arc::default(),
            config: Arc::new(config),
            db,
            renderer,
            signer,
            mailer,
            vault,
            worker_id,
            shutdown: CancellationToken::new(),
            sweeper: Arc::default(),
        })
    }

    /// Every course this instance serves (not those whose folder was removed), loading the
    /// folders on first use. Later file changes are applied by `drip lessons sync` (or at
    /// start-up, see `sync_on_start`).
    pub async fn courses(&self) -> anyhow::Result<Vec<db::courses::CourseRow>> {
        let mut all = db::courses::list(&self.db).await?;
        if all.is_empty() {
            self.sync_lessons(false, Utc::now(), None).await?;
            all = db::courses::list(&self.db).await?;
        }
        all.retain(|c| c.removed_at.is_none());
        Ok(all)
    }

    /// The course a caller means: the one named, else the only one, else `[course] default`.
    pub async fn course(&self, slug: Option<&str>) -> Result<db::courses::CourseRow, CourseChoice> {
        let courses = self.courses().await?;
        let wanted = slug.map(str::to_owned).or_else(|| match courses.len() {
            1 => Some(courses[0].slug.clone()),
            _ => Some(self.config.course.default.clone()).filter(|d| !d.is_empty()),
        });
        let known = || courses.iter().map(|c| c.slug.clone()).collect::<Vec<_>>();
        match wanted {
            Some(w) => courses
                .iter()
                .find(|c| c.slug == w)
                .cloned()
                .ok_or_else(|| CourseChoice::Unknown {
                    slug: w,
                    known: known(),
                }),
            None => Err(CourseChoice::NotSaid { known: known() }),
        }
    }

    /// The language of the pages that concern no course in particular (a link that leads
    /// nowhere, an address with no page): the default course's, else the first course's.
    /// None if it cannot be read now.
    pub async fn site_language(&self) -> Option<String> {
        let course = match self.course(None).await {
            Ok(c) => c,
            Err(_) => self.courses().await.ok()?.into_iter().next()?,
        };
        Some(course.language.as_str().to_owned())
    }

    /// Lints and syncs every course folder (or only `only`); lint problems are an error
    /// listing each one, and then nothing is written. A course whose folder is gone is
    /// kept, with its lessons unpublished, and a warning.
    pub async fn sync_lessons(
        &self,
        force: bool,
        now: DateTime<Utc>,
        only: Option<&str>,
    ) -> anyhow::Result<Vec<curriculum::SyncReport>> {
        let dir = &self.config.course.lessons_dir;
        let mut folders = curriculum::course_dirs(dir).map_err(|p| anyhow::anyhow!("{p}"))?;
        if let Some(only) = only {
            folders.retain(|f| f.file_name().is_some_and(|n| n == only));
            anyhow::ensure!(
                !folders.is_empty(),
                "no course folder {only:?} in {}",
                dir.display()
            );
        }
        anyhow::ensure!(
            !folders.is_empty(),
            "no course in {}: a course is a folder with a course.toml and NN-slug.md lessons",
            dir.display()
        );
        let mut problems: Vec<String> = curriculum::duplicate_slugs(&folders)
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut courses = Vec::new();
        for folder in &folders {
            match curriculum::load_dir(folder) {
                Ok(c) => courses.push(c),
                Err(ps) => problems.extend(ps.iter().map(ToString::to_string)),
            }
        }
        anyhow::ensure!(
            problems.is_empty(),
            "{} problem(s) in {}:\n{}",
            problems.len(),
            dir.display(),
            problems.join("\n")
        );
        let now_s = now.timestamp();
        let mut reports = Vec::new();
        for course in &courses {
            reports.push(curriculum::sync_course(&self.db, course, force, now_s).await?);
        }
        if only.is_none() {
            for gone in db::courses::list(&self.db).await? {
                if gone.removed_at.is_none()
                    && !courses.iter().any(|c| c.course.slug.as_str() == gone.slug)
                {
                    let mut tx = self.db.begin_write().await?;
                    db::courses::mark_removed(&mut tx, gone.id, now_s).await?;
                    tx.commit().await?;
                    tracing::warn!(course = %gone.slug, "the course's folder is gone from {}: the course and its lessons are kept, unpublished; put the folder back to publish them again", dir.display());
                }
            }
        }
        Ok(reports)
    }

    /// Syncs at start-up, logging conflicts instead of failing: the database keeps working.
    pub(crate) async fn sync_on_start(&self) -> anyhow::Result<()> {
        for report in self.sync_lessons(false, Utc::now(), None).await? {
            for (slug, outcome) in &report.lessons {
                match outcome {
                    curriculum::SyncOutcome::Unchanged => {}
                    curriculum::SyncOutcome::Conflict { .. } => {
                        tracing::warn!(course = %report.course, lesson = %slug, ?outcome, "lesson file changed but the lesson was edited in the admin UI: kept the admin's edit (run `drip lessons sync --force` to take the file)")
                    }
                    other => {
                        tracing::info!(course = %report.course, lesson = %slug, outcome = ?other, "lesson synced")
                    }
                }
            }
        }
        Ok(())
    }

    /// A stored reply text, decrypted; unreadable data shows as a notice, not a failure of
    /// the whole page.
    pub fn open_reply_text(&self, stored: &[u8]) -> Vec<u8> {
        self.vault
            .open(stored)
            .unwrap_or_else(|e| format!("[{e}]").into_bytes())
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.server.base_url)
    }

    /// A link that opens the subscriber's journal until `expires` (Unix seconds).
    pub fn journal_access_url(&self, subscriber_id: i64, expires: i64) -> String {
        self.url(&format!(
            "/journal/open/{}",
            self.signer
                .sign_until(Purpose::JournalAccess, subscriber_id, expires)
        ))
    }

    /// The links at the foot of a mail; with an enrollment, "unsubscribe" leaves that
    /// course (its page also offers leaving everything).
    pub fn links(&self, subscriber_id: i64, enrollment_id: Option<i64>) -> Links {
        let unsubscribe = match enrollment_id {
            Some(e) => self.signer.sign(Purpose::Leave, e),
            None => self.signer.sign(Purpose::Unsubscribe, subscriber_id),
        };
        Links {
            unsubscribe: self.url(&format!("/unsubscribe/{unsubscribe}")),
            preferences: self.url(&format!(
                "/preferences/{}",
                self.signer.sign(Purpose::Preferences, subscriber_id)
            )),
            journal: self.url(&format!(
                "/journal/{}",
                self.signer.sign(Purpose::Journal, subscriber_id)
            )),
        }
    }

    /// The link of the confirmation mail `delivery_id` (which names its course).
    pub fn confirm_url(&self, delivery_id: i64) -> String {
        self.url(&format!(
            "/confirm/{}",
            self.signer.sign(Purpose::ConfirmCourse, delivery_id)
        ))
    }

    /// The address replies to a delivery come back to.
    pub fn reply_address(&self, delivery_id: i64) -> String {
        let mail = &self.config.mail;
        format!(
            "{}+{}@{}",
            mail.reply_local,
            self.signer.sign(Purpose::Reply, delivery_id),
            mail.reply_domain
        )
    }

    /// The Message-ID of a delivery (without angle brackets): derived, so a resend after a
    /// crash carries the same one and mailbox providers fold the copies.
    pub fn message_id(&self, delivery_id: i64) -> String {
        format!(
            "drip.{}@{}",
            self.signer.sign(Purpose::MessageId, delivery_id),
            self.config.mail.reply_domain
        )
    }

    /// The delivery a Message-ID of ours names, if it is ours and intact.
    pub fn delivery_of_message_id(&self, message_id: &str) -> Option<i64> {
        let id = message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let (local, domain) = id.rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(&self.config.mail.reply_domain) {
            return None;
        }
        let token = local.strip_prefix("drip.")?;
        self.signer.verify(Purpose::MessageId, token).ok()
    }

    pub(crate) fn mail_context(
        &self,
        course: &db::courses::CourseRow,
        subscriber: &db::subscribers::SubscriberRow,
        enrollment_id: Option<i64>,
    ) -> MailContext {
        let lang = course.language.as_str();
        MailContext {
            subscriber: SubscriberVars::new(
                &subscriber.name,
                &subscriber.email,
                subscriber.timezone.name(),
                self.renderer
                    .catalogue()
                    .text(lang, "mail.no_name")
                    .unwrap_or_default(),
            ),
            course: CourseVars {
                title: course.title.clone(),
                description: course.description.clone(),
                footer: course.footer.clone(),
                language: lang.to_owned(),
            },
            links: self.links(subscriber.id, enrollment_id),
        }
    }

    /// A lesson exactly as it would be mailed (the same number, phase and layout the
    /// sender uses), addressed to a preview reader: the admin's preview, test sends and
    /// `drip lessons preview` all come through here. `content` may be an edit not saved.
    pub(crate) fn preview_lesson(
        &self,
        course: &db::courses::CourseRow,
        lessons: &[db::lessons::Lesson],
        lesson: (i64, i64),
        content: &curriculum::LessonContent,
        reader: (&str, &str),
    ) -> anyhow::Result<crate::render::RenderedMail> {
        let syllabus = crate::schedule::Syllabus::new(lessons, &course.send_window, &course.phases);
        let vars = syllabus.lesson_vars(lesson.0, lesson.1, content);
        let subscriber = db::subscribers::SubscriberRow::preview(
            reader.0,
            reader.1,
            self.config.default_timezone(),
        );
        let ctx = self.mail_context(course, &subscriber, None);
        self.renderer.lesson(content, &vars, &ctx)
    }
}
