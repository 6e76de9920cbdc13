//! The route table of the admin UI and the JSON API: every signed-in route is added through
//! [`Routes`], which records the areas it touches beside the handler, and one middleware
//! ([`Routes::guarded`]) checks each request against that record with [`Role::allows`]. A
//! GET or HEAD reads; any other method changes something. A route that reaches the router
//! without a record is refused to everyone, so forgetting to name its areas fails closed.
//!
//! The same middleware sends an admin without a second factor to enrol first when
//! `[security] require_totp` is on: only [`Area::Account`] routes stay open to them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{self, MethodRouter};

use crate::app::App;
use crate::auth::Admin;
use crate::domain::{Action, Area, Role};

/// One route and the areas it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub method: Method,
    /// The path as routed, with its `{parameters}`.
    pub path: String,
    pub areas: &'static [Area],
}

fn action_of(method: &Method) -> Action {
    if method == Method::GET || method == Method::HEAD {
        Action::Read
    } else {
        Action::Change
    }
}

/// Why a request was turned away; each door (pages, API) words it its own way.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// The admin's role does not cover the route's areas.
    Role {
        role: Role,
        areas: &'static [Area],
        action: Action,
    },
    /// `require_totp` is on and the admin has no second factor yet.
    MustEnrol,
    /// The route was added without naming its areas (a bug: refused to everyone).
    NoRule,
}

impl Refusal {
    pub(crate) fn explain(&self) -> String {
        match self {
            Refusal::Role {
                role,
                areas,
                action,
            } => {
                let what: Vec<&str> = areas.iter().map(|a| a.as_str()).collect();
                let verb = match action {
                    Action::Read => "see",
                    Action::Change => "change",
                };
                format!(
                    "Your role ({role}) does not allow you to {verb} {}. An owner can change your role.",
                    what.join(" and ")
                )
            }
            Refusal::MustEnrol => "This drip requires a second factor: set up an authenticator app first (/admin/account/totp, or `drip admin totp USER` on the server).".to_owned(),
            Refusal::NoRule => "This page has no access rule, so nobody may use it.".to_owned(),
        }
    }
}

/// Builds the response for a refusal: a page for the admin UI, JSON for the API. The admin
/// is missing only if the sign-in layer was left out (then nothing is allowed).
pub(crate) type Refuser = fn(&App, Option<&Admin>, &Method, Refusal) -> Response;

/// A router whose every route carries its areas.
pub(crate) struct Routes {
    router: Router<App>,
    rules: Vec<Rule>,
    /// Where the router will be nested: rule paths are recorded as the request sees them.
    prefix: &'static str,
}

macro_rules! method {
    ($name:ident, $method:ident) => {
        pub(crate) fn $name<H, T>(self, path: &str, areas: &'static [Area], handler: H) -> Self
        where
            H: Handler<T, App>,
            T: 'static,
        {
            self.add(Method::$method, path, areas, routing::$name(handler))
        }
    };
}

impl Routes {
    pub(crate) fn new() -> Routes {
        Routes::under("")
    }

    /// For a router that will be nested at `prefix`.
    pub(crate) fn under(prefix: &'static str) -> Routes {
        Routes {
            router: Router::new(),
            rules: Vec::new(),
            prefix,
        }
    }

    fn add(
        mut self,
        method: Method,
        path: &str,
        areas: &'static [Area],
        route: MethodRouter<App>,
    ) -> Routes {
        self.rules.push(Rule {
            method,
            path: format!("{}{path}", self.prefix),
            areas,
        });
        // axum merges the methods of one path into one route.
        self.router = self.router.route(path, route);
        self
    }

    method!(get, GET);
    method!(post, POST);
    method!(put, PUT);
    method!(patch, PATCH);
    method!(delete, DELETE);

    pub(crate) fn merge(mut self, other: Routes) -> Routes {
        assert_eq!(
            self.prefix, other.prefix,
            "merged route tables share a prefix"
        );
        self.router = self.router.merge(other.router);
        self.rules.extend(other.rules);
        self
    }

    /// Applies `f` to the router (a body limit on a group of routes); the rules stay.
    pub(crate) fn map(mut self, f: impl FnOnce(Router<App>) -> Router<App>) -> Routes {
        self.router = f(self.router);
        self
    }

    pub(crate) fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The router with the check on every route. It runs after the sign-in layer that put
    /// the [`Admin`] in the request (the caller adds that layer outside this one).
    pub(crate) fn guarded(self, app: &App, refuse: Refuser) -> Router<App> {
        let mut table: HashMap<(Method, String), &'static [Area]> = HashMap::new();
        for rule in &self.rules {
            let earlier = table.insert((rule.method.clone(), rule.path.clone()), rule.areas);
            assert!(
                earlier.is_none(),
                "{} {} is in the route table twice",
                rule.method,
                rule.path
            );
        }
        let guard = Guard {
            app: app.clone(),
            table: Arc::new(table),
            refuse,
        };
        self.router
            .route_layer(middleware::from_fn_with_state(guard, check))
    }
}

#[derive(Clone)]
struct Guard {
    app: App,
    table: Arc<HashMap<(Method, String), &'static [Area]>>,
    refuse: Refuser,
}

/// The one check: the route's areas, the request's action, the admin's role.
async fn check(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let Some(admin) = req.extensions().get::<Admin>().cloned() else {
        tracing::error!(path = %req.uri().path(), "a route reached the access check without a signed-in admin");
        return (g.refuse)(&g.app, None, req.method(), Refusal::NoRule);
    };
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(areas) = g.table.get(&(method.clone(), path.clone())).copied() else {
        tracing::error!(%method, %path, "a route without an entry in the access table was refused");
        return (g.refuse)(&g.app, Some(&admin), &method, Refusal::NoRule);
    };
    let action = action_of(&method);
    let only_account = areas.iter().all(|a| *a == Area::Account);
    if g.app.config.security.require_totp && !admin.totp && !only_account {
        return (g.refuse)(&g.app, Some(&admin), &method, Refusal::MustEnrol);
    }
    if !admin.role.allows_all(areas, action) {
        tracing::info!(user = %admin.username, role = %admin.role, %method, %path, "refused by role");
        return (g.refuse)(
            &g.app,
            Some(&admin),
            &method,
            Refusal::Role {
                role: admin.role,
                areas,
                action,
            },
        );
    }
    next.run(req).await
}

/// The admin UI's sections in the order of its menu, with the area each one shows.
pub(crate) const SECTIONS: [(&str, &str, Area); 6] = [
    ("lessons", "/admin/lessons", Area::Lessons),
    ("broadcasts", "/admin/broadcasts", Area::Broadcasts),
    ("subscribers", "/admin/subscribers", Area::Subscribers),
    ("replies", "/admin/replies", Area::Replies),
    ("stats", "/admin/stats", Area::Stats),
    ("webhooks", "/admin/webhooks", Area::Webhooks),
];

/// Where an admin lands after signing in: the first section their role may see.
pub(crate) fn home(role: Role) -> &'static str {
    SECTIONS
        .iter()
        .find(|(_, _, area)| role.allows(*area, Action::Read))
        .map(|(_, path, _)| *path)
        .unwrap_or("/admin/account/totp")
}

/// What the pages show of an admin's permissions: the menu and the buttons that change
/// things. Hiding is for comfort only; the check above is what refuses.
pub(crate) fn can(role: Role) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for area in [
        Area::Courses,
        Area::Lessons,
        Area::Broadcasts,
        Area::Stats,
        Area::Subscribers,
        Area::Replies,
        Area::Answers,
        Area::Webhooks,
    ] {
        map.insert(
            area.as_str().to_owned(),
            role.allows(area, Action::Read).into(),
        );
        map.insert(
            format!("change_{}", area.as_str()),
            role.allows(area, Action::Change).into(),
        );
    }
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_lands_on_a_section_they_may_see() {
        assert_eq!(home(Role::Owner), "/admin/lessons");
        assert_eq!(home(Role::Editor), "/admin/lessons");
        assert_eq!(home(Role::Reader), "/admin/subscribers");
    }

    #[test]
    fn the_refusal_names_the_role_and_what_it_lacks() {
        let text = Refusal::Role {
            role: Role::Editor,
            areas: &[Area::Subscribers, Area::Replies],
            action: Action::Read,
        }
        .explain();
        assert!(
            text.contains("editor") && text.contains("see subscribers and replies"),
            "{text}"
        );
    }
}
