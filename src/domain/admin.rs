//! What an admin may do: their role, the areas of drip a request touches, and the one rule
//! that joins them ([`Role::allows`]). Every admin page and API route names its areas once,
//! in its route table (`crate::web::access`); nothing else decides who may do what.

use std::fmt;

use super::InvalidInput;

/// An admin's role, stored in `admins.role` (CHECK constraint of the same three values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Owner,
    /// Courses, lessons, broadcasts and statistics; never a subscriber's details or the
    /// text of a reply.
    Editor,
    /// Subscribers and replies, to read (and the list of courses, to pick the one to work
    /// on); no change to anything, no lesson.
    Reader,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Editor, Role::Reader];

    pub fn parse(s: &str) -> Result<Role, InvalidInput> {
        match s.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Role::Owner),
            "editor" => Ok(Role::Editor),
            "reader" => Ok(Role::Reader),
            other => Err(InvalidInput::new(
                "role",
                format!("{other:?} is not a role; use owner, editor or reader"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Editor => "editor",
            Role::Reader => "reader",
        }
    }

    /// Whether this role may take `action` in `area`: the whole permission model.
    pub fn allows(self, area: Area, action: Action) -> bool {
        match (self, area) {
            // Signing out and one's own second factor belong to everyone.
            (_, Area::Account) => true,
            (Role::Owner, _) => true,
            (Role::Editor, Area::Courses | Area::Lessons | Area::Broadcasts | Area::Stats) => true,
            (Role::Editor, Area::Subscribers | Area::Replies | Area::Answers) => false,
            // Writing back to one reader is what a reader role is for; it edits nothing.
            (Role::Reader, Area::Answers) => true,
            (Role::Reader, Area::Subscribers | Area::Replies | Area::Courses) => {
                action == Action::Read
            }
            (Role::Reader, Area::Lessons | Area::Broadcasts | Area::Stats) => false,
            // Where drip posts its events, and the secrets that sign them: owners only.
            (Role::Editor | Role::Reader, Area::Webhooks) => false,
        }
    }

    /// Whether this role may take `action` in every one of `areas` (a page that shows a
    /// subscriber with their replies touches both).
    pub fn allows_all(self, areas: &[Area], action: Action) -> bool {
        areas.iter().all(|a| self.allows(*a, action))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A part of drip that pages and API routes touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    /// The admin's own account: sign-out, the second factor, the landing page.
    Account,
    Courses,
    Lessons,
    Broadcasts,
    /// The funnel, answer rates and the mail relay's state.
    Stats,
    /// Who subscribed, where they are, and changes to that.
    Subscribers,
    /// The text people wrote back (the inbox, a subscriber's timeline, exports).
    Replies,
    /// Writing back to a reader: an answer to one of their replies.
    Answers,
    /// The endpoints events are posted to, their secrets and their delivery attempts.
    Webhooks,
}

impl Area {
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Account => "account",
            Area::Courses => "courses",
            Area::Lessons => "lessons",
            Area::Broadcasts => "broadcasts",
            Area::Stats => "stats",
            Area::Subscribers => "subscribers",
            Area::Replies => "replies",
            Area::Answers => "answers",
            Area::Webhooks => "webhooks",
        }
    }
}

/// Looking, or changing something. A request's action follows from its HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Read,
    Change,
}

/// Where an admin session stands, stored in `admin_sessions.stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// Signed in.
    Full,
    /// The password was right; the second factor's code is still to come. Opens nothing
    /// but the code form.
    Code,
}

impl SessionStage {
    pub fn parse(s: &str) -> anyhow::Result<SessionStage> {
        match s {
            "full" => Ok(SessionStage::Full),
            "code" => Ok(SessionStage::Code),
            other => anyhow::bail!("unknown session stage {other:?} in admin_sessions"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionStage::Full => "full",
            SessionStage::Code => "code",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREAS: [Area; 8] = [
        Area::Account,
        Area::Courses,
        Area::Lessons,
        Area::Broadcasts,
        Area::Stats,
        Area::Subscribers,
        Area::Replies,
        Area::Webhooks,
    ];

    #[test]
    fn the_owner_may_do_everything() {
        for area in AREAS {
            for action in [Action::Read, Action::Change] {
                assert!(Role::Owner.allows(area, action), "{area:?} {action:?}");
            }
        }
    }

    #[test]
    fn an_editor_never_reaches_subscribers_or_reply_text() {
        for action in [Action::Read, Action::Change] {
            for area in [Area::Courses, Area::Lessons, Area::Broadcasts, Area::Stats] {
                assert!(Role::Editor.allows(area, action), "{area:?} {action:?}");
            }
            assert!(!Role::Editor.allows(Area::Replies, action));
            assert!(!Role::Editor.allows(Area::Subscribers, action));
        }
        // A page showing a subscriber with their replies is out of reach as a whole.
        assert!(!Role::Editor.allows_all(&[Area::Subscribers, Area::Replies], Action::Read));
    }

    #[test]
    fn a_reader_reads_subscribers_and_replies_and_changes_nothing() {
        assert!(Role::Reader.allows_all(&[Area::Subscribers, Area::Replies], Action::Read));
        for area in AREAS.into_iter().filter(|a| *a != Area::Account) {
            assert!(!Role::Reader.allows(area, Action::Change), "{area:?}");
        }
        for area in [Area::Lessons, Area::Broadcasts, Area::Stats] {
            assert!(!Role::Reader.allows(area, Action::Read), "{area:?}");
        }
        // The list of courses, to choose which one to read about.
        assert!(Role::Reader.allows(Area::Courses, Action::Read));
    }

    #[test]
    fn only_owners_see_or_change_webhooks() {
        for action in [Action::Read, Action::Change] {
            assert!(Role::Owner.allows(Area::Webhooks, action));
            assert!(!Role::Editor.allows(Area::Webhooks, action));
            assert!(!Role::Reader.allows(Area::Webhooks, action));
        }
    }

    #[test]
    fn everyone_manages_their_own_account() {
        for role in Role::ALL {
            assert!(role.allows(Area::Account, Action::Change));
        }
    }

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        assert_eq!(Role::parse(" Editor ").unwrap(), Role::Editor);
        let e = Role::parse("admin").unwrap_err();
        assert_eq!(e.field, "role");
        assert!(e.message.contains("owner, editor or reader"), "{e}");
    }
}
