//! Routes: what a request asks, its path parameters checked.

use super::*;

/// What a request asks, its path parameters checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /cells`.
    ListCells,
    /// `GET /cells/{cell}`.
    GetCell {
        /// The cell.
        cell: String,
    },
    /// `PUT /cells/{cell}`.
    PutCell {
        /// The cell.
        cell: String,
    },
    /// `DELETE /cells/{cell}`.
    DeleteCell {
        /// The cell.
        cell: String,
    },
    /// `GET /cells/{cell}/plan`.
    Plan {
        /// The cell.
        cell: String,
    },
    /// `GET /cells/{cell}/doctor`.
    Doctor {
        /// The cell.
        cell: String,
    },
    /// `GET /cells/{cell}/clusters`.
    Clusters {
        /// The cell.
        cell: String,
    },
    /// `GET /cells/{cell}/target-groups`.
    TargetGroups {
        /// The cell.
        cell: String,
    },
    /// `GET /cells/{cell}/rollouts`.
    ListRollouts {
        /// The cell.
        cell: String,
    },
    /// `POST /cells/{cell}/rollouts`.
    StartRollout {
        /// The cell.
        cell: String,
    },
    /// `GET /cells/{cell}/rollouts/{id}`.
    GetRollout {
        /// The cell.
        cell: String,
        /// The rollout (its execution's name).
        id: String,
    },
    /// `POST /cells/{cell}/rollouts/{id}/resume|promote|promote-full|abort`.
    Signal {
        /// The cell.
        cell: String,
        /// The rollout.
        id: String,
        /// What to tell it.
        signal: Signal,
    },
    /// `POST /cells/{cell}/rollouts/{id}/retry`.
    Retry {
        /// The cell.
        cell: String,
        /// The rollout.
        id: String,
    },
}

impl Endpoint {
    /// The route's template, for logs (`PUT /cells/{cell}`): no parameter values.
    pub fn route(&self) -> &'static str {
        match self {
            Self::ListCells => "GET /cells",
            Self::GetCell { .. } => "GET /cells/{cell}",
            Self::PutCell { .. } => "PUT /cells/{cell}",
            Self::DeleteCell { .. } => "DELETE /cells/{cell}",
            Self::Plan { .. } => "GET /cells/{cell}/plan",
            Self::Doctor { .. } => "GET /cells/{cell}/doctor",
            Self::Clusters { .. } => "GET /cells/{cell}/clusters",
            Self::TargetGroups { .. } => "GET /cells/{cell}/target-groups",
            Self::ListRollouts { .. } => "GET /cells/{cell}/rollouts",
            Self::StartRollout { .. } => "POST /cells/{cell}/rollouts",
            Self::GetRollout { .. } => "GET /cells/{cell}/rollouts/{id}",
            Self::Signal { signal, .. } => match signal {
                Signal::Resume => "POST /cells/{cell}/rollouts/{id}/resume",
                Signal::Promote => "POST /cells/{cell}/rollouts/{id}/promote",
                Signal::PromoteFull => "POST /cells/{cell}/rollouts/{id}/promote-full",
                Signal::Abort => "POST /cells/{cell}/rollouts/{id}/abort",
            },
            Self::Retry { .. } => "POST /cells/{cell}/rollouts/{id}/retry",
        }
    }
}

/// Why a request matches no endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No such path (404).
    NotFound,
    /// The path exists, the method does not (405); `allow` lists the methods that do.
    MethodNotAllowed {
        /// The path's methods.
        allow: &'static [&'static str],
    },
    /// A path parameter is not valid (400).
    BadParam {
        /// `path.cell` or `path.id`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Decodes `%XX` escapes (a `+` stays a `+`: this is a path, not a form).
///
/// # Errors
///
/// A `%` not followed by two hex digits, or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let byte = b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "holds a `%` that is not followed by two hex digits".to_string())?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "holds percent-encoded bytes that are not UTF-8".to_string())
}

/// A value cut for an error message, quoted.
pub(super) fn shown(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() > MAX {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}...")
    } else {
        format!("{s:?}")
    }
}

/// Checks a cell name of a path: `^[a-z][a-z0-9-]{0,31}$`.
pub(super) fn cell_param(raw: &str) -> Result<String, RouteError> {
    let bad = |message: String| RouteError::BadParam {
        field: "path.cell",
        message,
    };
    let cell = percent_decode(raw).map_err(bad)?;
    let ok = cell.starts_with(|c: char| c.is_ascii_lowercase())
        && cell.len() <= MAX_CELL_NAME
        && cell
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(cell)
    } else {
        Err(bad(format!(
            "{} is not a cell name: 1-{MAX_CELL_NAME} characters of a-z, 0-9 and -, starting \
             with a letter",
            shown(&cell)
        )))
    }
}

/// Checks a rollout id of a path: an execution name of okra's, `^[A-Za-z0-9_-]{1,80}$`.
pub(super) fn id_param(raw: &str) -> Result<String, RouteError> {
    let bad = |message: String| RouteError::BadParam {
        field: "path.id",
        message,
    };
    let id = percent_decode(raw).map_err(bad)?;
    let ok = !id.is_empty()
        && id.len() <= MAX_ROLLOUT_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id)
    } else {
        Err(bad(format!(
            "{} is not a rollout id: 1-{MAX_ROLLOUT_ID} characters of A-Z, a-z, 0-9, - and _",
            shown(&id)
        )))
    }
}

/// The endpoint of a method and a path. Trailing slashes are ignored, each segment is
/// percent-decoded (after the path is split, so `%2F` is part of a segment), and a query string
/// or fragment, if the path carries one, is ignored. Unknown paths are [`RouteError::NotFound`];
/// the method is checked before the parameters.
///
/// # Errors
///
/// [`RouteError`]: 404, 405 or 400.
pub fn route(method: &str, path: &str) -> Result<Endpoint, RouteError> {
    #[derive(Clone, Copy)]
    enum Shape {
        Cells,
        Cell,
        Plan,
        Doctor,
        Clusters,
        TargetGroups,
        Rollouts,
        Rollout,
        Action(Option<Signal>),
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let Some(rest) = path.strip_prefix('/') else {
        return Err(RouteError::NotFound);
    };
    let seg: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let lit = |i: usize, want: &str| {
        seg.get(i)
            .is_some_and(|s| percent_decode(s).is_ok_and(|s| s == want))
    };
    if !lit(0, "cells") {
        return Err(RouteError::NotFound);
    }
    let shape = match seg.len() {
        1 => Shape::Cells,
        2 => Shape::Cell,
        3 if lit(2, "plan") => Shape::Plan,
        3 if lit(2, "doctor") => Shape::Doctor,
        3 if lit(2, "clusters") => Shape::Clusters,
        3 if lit(2, "target-groups") => Shape::TargetGroups,
        3 if lit(2, "rollouts") => Shape::Rollouts,
        4 if lit(2, "rollouts") => Shape::Rollout,
        5 if lit(2, "rollouts") => {
            let action = percent_decode(seg[4]).map_err(|_| RouteError::NotFound)?;
            Shape::Action(match action.as_str() {
                "retry" => None,
                other => Some(Signal::from_path_segment(other).ok_or(RouteError::NotFound)?),
            })
        }
        _ => return Err(RouteError::NotFound),
    };
    let allow: &'static [&'static str] = match shape {
        Shape::Cells
        | Shape::Plan
        | Shape::Doctor
        | Shape::Clusters
        | Shape::TargetGroups
        | Shape::Rollout => &["GET"],
        Shape::Cell => &["GET", "PUT", "DELETE"],
        Shape::Rollouts => &["GET", "POST"],
        Shape::Action(_) => &["POST"],
    };
    if !allow.contains(&method) {
        return Err(RouteError::MethodNotAllowed { allow });
    }
    if let Shape::Cells = shape {
        return Ok(Endpoint::ListCells);
    }
    let cell = cell_param(seg[1])?;
    Ok(match (shape, method) {
        (Shape::Cell, "GET") => Endpoint::GetCell { cell },
        (Shape::Cell, "PUT") => Endpoint::PutCell { cell },
        (Shape::Cell, _) => Endpoint::DeleteCell { cell },
        (Shape::Plan, _) => Endpoint::Plan { cell },
        (Shape::Clusters, _) => Endpoint::Clusters { cell },
        (Shape::TargetGroups, _) => Endpoint::TargetGroups { cell },
        (Shape::Doctor, _) => Endpoint::Doctor { cell },
        (Shape::Rollouts, "GET") => Endpoint::ListRollouts { cell },
        (Shape::Rollouts, _) => Endpoint::StartRollout { cell },
        (Shape::Rollout, _) => Endpoint::GetRollout {
            cell,
            id: id_param(seg[3])?,
        },
        (Shape::Action(Some(signal)), _) => Endpoint::Signal {
            cell,
            id: id_param(seg[3])?,
            signal,
        },
        (Shape::Action(None), _) => Endpoint::Retry {
            cell,
            id: id_param(seg[3])?,
        },
        (Shape::Cells, _) => Endpoint::ListCells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, path: &str) -> Endpoint {
        route(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
    }

    fn cell(c: &str) -> String {
        c.to_string()
    }

    #[test]
    fn every_route() {
        let id = "web--1-1-0--0".to_string();
        assert_eq!(ok("GET", "/cells"), Endpoint::ListCells);
        assert_eq!(
            ok("GET", "/cells/web/clusters"),
            Endpoint::Clusters { cell: cell("web") }
        );
        assert_eq!(
            ok("GET", "/cells/web/target-groups/"),
            Endpoint::TargetGroups { cell: cell("web") }
        );
        assert!(matches!(
            route("POST", "/cells/web/clusters"),
            Err(RouteError::MethodNotAllowed { allow: ["GET"] })
        ));
        assert_eq!(
            ok("GET", "/cells/web"),
            Endpoint::GetCell { cell: cell("web") }
        );
        assert_eq!(
            ok("PUT", "/cells/web"),
            Endpoint::PutCell { cell: cell("web") }
        );
        assert_eq!(
            ok("DELETE", "/cells/web"),
            Endpoint::DeleteCell { cell: cell("web") }
        );
        assert_eq!(
            ok("GET", "/cells/web/plan"),
            Endpoint::Plan { cell: cell("web") }
        );
        assert_eq!(
            ok("GET", "/cells/web/rollouts"),
            Endpoint::ListRollouts { cell: cell("web") }
        );
        assert_eq!(
            ok("POST", "/cells/web/rollouts"),
            Endpoint::StartRollout { cell: cell("web") }
        );
        assert_eq!(
            ok("GET", "/cells/web/rollouts/web--1-1-0--0"),
            Endpoint::GetRollout {
                cell: cell("web"),
                id: id.clone()
            }
        );
        for (action, signal) in [
            ("resume", Signal::Resume),
            ("promote", Signal::Promote),
            ("promote-full", Signal::PromoteFull),
            ("abort", Signal::Abort),
        ] {
            let ep = ok("POST", &format!("/cells/web/rollouts/{id}/{action}"));
            assert_eq!(
                ep,
                Endpoint::Signal {
                    cell: cell("web"),
                    id: id.clone(),
                    signal
                }
            );
            assert!(ep.route().ends_with(action), "{}", ep.route());
        }
        assert_eq!(
            ok("POST", &format!("/cells/web/rollouts/{id}/retry")),
            Endpoint::Retry {
                cell: cell("web"),
                id: id.clone()
            }
        );
    }

    #[test]
    fn trailing_slashes_and_queries_are_ignored() {
        assert_eq!(ok("GET", "/cells/"), Endpoint::ListCells);
        assert_eq!(ok("GET", "/cells//"), Endpoint::ListCells);
        assert_eq!(
            ok("GET", "/cells/web/"),
            Endpoint::GetCell { cell: cell("web") }
        );
        assert_eq!(
            ok("GET", "/cells/web/rollouts/?limit=3"),
            Endpoint::ListRollouts { cell: cell("web") }
        );
        assert_eq!(
            ok("POST", "/cells/web/rollouts/x1/abort/"),
            Endpoint::Signal {
                cell: cell("web"),
                id: "x1".into(),
                signal: Signal::Abort
            }
        );
    }

    #[test]
    fn parameters_are_percent_decoded() {
        assert_eq!(
            ok("GET", "/cells/web%2Deu/plan"),
            Endpoint::Plan {
                cell: cell("web-eu")
            }
        );
        assert_eq!(
            ok("GET", "/%63ells/web"),
            Endpoint::GetCell { cell: cell("web") }
        );
        assert_eq!(
            ok("POST", "/cells/web/rollouts/web--1-2-0--0/promote%2Dfull"),
            Endpoint::Signal {
                cell: cell("web"),
                id: "web--1-2-0--0".into(),
                signal: Signal::PromoteFull
            }
        );
        let field = |m: &str, p: &str| match route(m, p) {
            Err(RouteError::BadParam { field, .. }) => field,
            other => panic!("{m} {p}: {other:?}"),
        };
        // An encoded slash stays inside the segment (and is no cell name).
        assert_eq!(field("GET", "/cells/a%2Fb"), "path.cell");
        assert_eq!(field("GET", "/cells/w%C3%A9b"), "path.cell");
        assert_eq!(field("GET", "/cells/web%zz"), "path.cell");
        assert_eq!(field("GET", "/cells/web%E9"), "path.cell");
        assert_eq!(field("GET", "/cells/Web"), "path.cell");
        assert_eq!(field("GET", "/cells/9web"), "path.cell");
        assert_eq!(
            field("GET", &format!("/cells/{}", "a".repeat(33))),
            "path.cell"
        );
        assert_eq!(field("GET", "/cells/web/rollouts/a.b"), "path.id");
        assert_eq!(field("GET", "/cells/web/rollouts/a%20b"), "path.id");
        assert_eq!(
            field(
                "POST",
                &format!("/cells/web/rollouts/{}/abort", "x".repeat(81))
            ),
            "path.id"
        );
        assert_eq!(field("GET", "/cells//rollouts"), "path.cell");
        assert!(route("GET", &format!("/cells/{}", "a".repeat(32))).is_ok());
    }

    #[test]
    fn unknown_paths_and_methods() {
        for p in [
            "",
            "/",
            "cells",
            "/cell",
            "/cells/web/x",
            "/cells/web/rollouts/x/y",
            "/cells/web/rollouts/x/retry/again",
            "/Cells",
            "/v1/cells",
            "/cells/web/plan/x",
            "/cells/web/rollouts/x/%zz",
        ] {
            assert_eq!(route("GET", p), Err(RouteError::NotFound), "{p}");
            assert_eq!(route("POST", p), Err(RouteError::NotFound), "{p}");
        }
        let allow = |m: &str, p: &str| match route(m, p) {
            Err(RouteError::MethodNotAllowed { allow }) => allow,
            other => panic!("{m} {p}: {other:?}"),
        };
        assert_eq!(allow("POST", "/cells"), ["GET"]);
        assert_eq!(allow("PATCH", "/cells/web"), ["GET", "PUT", "DELETE"]);
        assert_eq!(allow("DELETE", "/cells/web/rollouts"), ["GET", "POST"]);
        assert_eq!(allow("POST", "/cells/web/plan"), ["GET"]);
        assert_eq!(allow("PUT", "/cells/web/rollouts/x"), ["GET"]);
        assert_eq!(allow("GET", "/cells/web/rollouts/x/abort"), ["POST"]);
        assert_eq!(allow("HEAD", "/cells"), ["GET"]);
        // The method is checked before the parameters.
        assert_eq!(allow("PATCH", "/cells/BAD"), ["GET", "PUT", "DELETE"]);
    }

    #[test]
    fn serde_paths() {
        assert_eq!(
            parse_error_path("canary.steps[0].setWeight: invalid type: string \"x\", expected u32"),
            (
                "canary.steps[0].setWeight".into(),
                "invalid type: string \"x\", expected u32".into()
            )
        );
        assert_eq!(parse_error_path("missing field `ingress`").0, "ingress");
        assert_eq!(
            parse_error_path("targetGroup: unknown field `prt`, expected one of `port`").0,
            "targetGroup.prt"
        );
        assert_eq!(
            parse_error_path("invalid type: sequence, expected struct CellSpec").0,
            "body"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Db+c").as_deref(), Ok("a-b+c"));
        assert!(percent_decode("%").is_err());
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%+1").is_err());
        assert!(percent_decode("%ff").is_err());
        assert_eq!(percent_decode("%C3%A9").as_deref(), Ok("é"));
    }
}
