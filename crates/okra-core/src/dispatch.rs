//! Which cells an event concerns: the dispatcher reads an event into a [`Filter`], lists the
//! stored cells it needs, and keeps those the filter [selects](Filter::selects).

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::ClusterSelector;

/// Which cells an event concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every cell (a schedule, a deleted cluster, an API call without names).
    All,
    /// The named cells.
    Named(Vec<String>),
    /// Cells whose selector matches a new cluster's tags.
    Tags(BTreeMap<String, String>),
    /// Cells whose selector matches the cluster's tags now, or names one of `keys` (tags that
    /// changed: the cluster may have left a cell).
    Retagged {
        /// The cluster.
        cluster: String,
        /// The tag keys set or removed.
        keys: BTreeSet<String>,
    },
    /// None (a failed API call, a tag change of something else than a cluster).
    Nothing(String),
}

impl Filter {
    /// Whether a cell named `name` with `selector` is concerned. `retagged_tags` is the
    /// retagged cluster's tags now (read by the dispatcher for [`Filter::Retagged`] only).
    pub fn selects(
        &self,
        name: &str,
        selector: &ClusterSelector,
        retagged_tags: &BTreeMap<String, String>,
    ) -> bool {
        match self {
            Self::All => true,
            Self::Named(names) => names.iter().any(|n| n == name),
            Self::Tags(tags) => selector.matches(tags),
            Self::Retagged { keys, .. } => {
                selector.matches(retagged_tags)
                    || selector.match_tags.keys().any(|k| keys.contains(k))
            }
            Self::Nothing(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(pairs: &[(&str, &str)]) -> ClusterSelector {
        ClusterSelector {
            match_tags: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_retagged_cluster_concerns_the_cells_it_joins_and_those_it_may_leave() {
        let web = sel(&[("app", "web")]);
        let api = sel(&[("app", "api")]);
        let other = sel(&[("team", "x")]);
        let now: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let f = Filter::Retagged {
            cluster: "c1".into(),
            keys: ["app".to_string()].into(),
        };
        assert!(f.selects("web", &web, &now));
        assert!(f.selects("api", &api, &now), "it may have left api");
        assert!(!f.selects("other", &other, &now));
    }

    #[test]
    fn names_tags_all_and_nothing() {
        let web = sel(&[("app", "web")]);
        let none = BTreeMap::new();
        assert!(Filter::All.selects("web", &web, &none));
        assert!(!Filter::Nothing("why".into()).selects("web", &web, &none));
        assert!(Filter::Named(vec!["web".into()]).selects("web", &web, &none));
        assert!(!Filter::Named(vec!["api".into()]).selects("web", &web, &none));
        let tags: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("x".to_string(), "y".to_string()),
        ]
        .into();
        assert!(Filter::Tags(tags).selects("web", &web, &none));
        assert!(!Filter::Tags(BTreeMap::new()).selects("web", &web, &none));
    }
}
