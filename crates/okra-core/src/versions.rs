//! Grouping a cell's clusters by their version tag.
//!
//! Versions are semver (`1.4.2`, `v1.4.2`, `2.0.0-rc.1`). Clusters whose tag is missing or not
//! semver are ignored and reported, never guessed at. Blocked versions (they failed a rollout in
//! this cell) and versions above a pinned one are ignored too, with the reason.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::model::{Cluster, ClusterStatus};
use crate::spec::CellSpec;

/// Parses a version tag: semver with an optional leading `v` or `V`.
pub fn parse_version(raw: &str) -> Result<Version, semver::Error> {
    let t = raw.trim();
    let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
    Version::parse(t)
}

/// The canonical text of a version tag (no leading `v`), used for the blocklist and names.
/// Falls back to the trimmed text when it is not semver.
pub fn canonical(raw: &str) -> String {
    parse_version(raw)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| raw.trim().to_string())
}

/// Why a cluster of the cell takes no part in a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum IgnoreReason {
    /// It has no version tag.
    NoVersionTag {
        /// The tag key that was looked for.
        tag: String,
    },
    /// Its version tag is not semver.
    BadVersion {
        /// The tag's value.
        value: String,
        /// What the semver parser said.
        error: String,
    },
    /// Its version failed a rollout of this cell before.
    Blocked {
        /// The version.
        version: String,
    },
    /// The cell is pinned below its version.
    AbovePin {
        /// The version.
        version: String,
        /// The pinned version.
        pin: String,
    },
    /// It cannot serve (DELETING, FAILED, ...).
    NotServing {
        /// Its status.
        status: ClusterStatus,
    },
}

/// A cluster of the cell that takes no part, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ignored {
    /// The cluster's name.
    pub cluster: String,
    /// Why.
    #[serde(flatten)]
    pub reason: IgnoreReason,
}

/// A cluster of the cell that is still being created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// The cluster's name.
    pub cluster: String,
    /// Its version tag, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The cell's clusters, grouped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grouping<'a> {
    /// Serving clusters by version (sorted by name within a version).
    pub by_version: BTreeMap<Version, Vec<&'a Cluster>>,
    /// Clusters still being created.
    pub pending: Vec<Pending>,
    /// Clusters that take no part, with the reason.
    pub ignored: Vec<Ignored>,
}

/// Groups the clusters that match the cell's selector. Clusters that do not match are not part of
/// the cell and are not reported.
pub fn group<'a>(
    spec: &CellSpec,
    clusters: &'a [Cluster],
    blocklist: &BTreeSet<String>,
) -> Grouping<'a> {
    let pin = spec.version.as_deref().and_then(|p| parse_version(p).ok());
    let mut out = Grouping::default();
    let mut members: Vec<&Cluster> = clusters
        .iter()
        .filter(|c| spec.cluster_selector.matches(&c.tags))
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    for c in members {
        let raw = c.tags.get(&spec.version_tag);
        if c.status == ClusterStatus::Creating {
            out.pending.push(Pending {
                cluster: c.name.clone(),
                version: raw.cloned(),
            });
            continue;
        }
        if !c.status.serves() {
            out.ignored.push(Ignored {
                cluster: c.name.clone(),
                reason: IgnoreReason::NotServing { status: c.status },
            });
            continue;
        }
        let Some(raw) = raw else {
            out.ignored.push(Ignored {
                cluster: c.name.clone(),
                reason: IgnoreReason::NoVersionTag {
                    tag: spec.version_tag.clone(),
                },
            });
            continue;
        };
        let version = match parse_version(raw) {
            Ok(v) => v,
            Err(e) => {
                out.ignored.push(Ignored {
                    cluster: c.name.clone(),
                    reason: IgnoreReason::BadVersion {
                        value: raw.clone(),
                        error: e.to_string(),
                    },
                });
                continue;
            }
        };
        if blocklist.contains(&version.to_string()) {
            out.ignored.push(Ignored {
                cluster: c.name.clone(),
                reason: IgnoreReason::Blocked {
                    version: version.to_string(),
                },
            });
            continue;
        }
        if let Some(pin) = &pin
            && version > *pin
        {
            out.ignored.push(Ignored {
                cluster: c.name.clone(),
                reason: IgnoreReason::AbovePin {
                    version: version.to_string(),
                    pin: pin.to_string(),
                },
            });
            continue;
        }
        out.by_version.entry(version).or_default().push(c);
    }
    out
}

impl Grouping<'_> {
    /// The version the cell should serve: the pinned one, or else the newest with at least
    /// `replicas` serving clusters. `None` when no version is complete.
    pub fn target(&self, spec: &CellSpec) -> Option<&Version> {
        let replicas = spec.replicas as usize;
        let complete = |v: &Version| self.by_version.get(v).is_some_and(|c| c.len() >= replicas);
        match spec.version.as_deref().and_then(|p| parse_version(p).ok()) {
            Some(pin) => self
                .by_version
                .get_key_value(&pin)
                .map(|(v, _)| v)
                .filter(|v| complete(v)),
            None => self.by_version.keys().rev().find(|v| complete(v)),
        }
    }

    /// One line on why no version is complete, for "nothing to do" answers.
    pub fn shortfall(&self, spec: &CellSpec) -> String {
        let replicas = spec.replicas;
        if let Some(pin) = spec.version.as_deref() {
            let have = parse_version(pin)
                .ok()
                .and_then(|p| self.by_version.get(&p))
                .map_or(0, Vec::len);
            return format!(
                "pinned version {} has {have} of {replicas} serving clusters",
                canonical(pin)
            );
        }
        match self.by_version.iter().next_back() {
            Some((v, c)) => {
                format!(
                    "newest version {v} has {} of {replicas} serving clusters",
                    c.len()
                )
            }
            None if self.pending.is_empty() => {
                "no serving cluster matches the selector".to_string()
            }
            None => format!(
                "{} matching cluster(s) are still being created",
                self.pending.len()
            ),
        }
    }
}
