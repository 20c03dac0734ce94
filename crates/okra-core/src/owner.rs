//! Whether another controller owns the load balancer, listener or rule a cell would shift.
//!
//! aws-load-balancer-controller reconciles what it made to its Kubernetes resources: a listener's
//! or rule's actions that okra changed are set back on its next reconcile (okra then sees drift,
//! its rollback fails, a good version is blocked). What it manages carries its tags — the
//! cluster's (`elbv2.k8s.aws/cluster`), and the stack of an Ingress group
//! (`ingress.k8s.aws/stack`) or of a Service (`service.k8s.aws/stack`) (the controller's docs,
//! "Ingress annotations" / "Service annotations", and its deployment guide's resource tags) —
//! so a cell on such a load balancer, listener or rule is refused up front, naming the tag.

/// Resources (ARNs) with their tags, in a given order.
pub type Tagged = Vec<(String, Vec<(String, String)>)>;

/// The tag keys aws-load-balancer-controller puts on what it manages.
pub const CONTROLLER_TAG_KEYS: [&str; 3] = [
    "elbv2.k8s.aws/cluster",
    "ingress.k8s.aws/stack",
    "service.k8s.aws/stack",
];

/// A resource of the cell's ingress that the controller manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerOwned {
    /// The load balancer's, listener's or rule's ARN.
    pub resource: String,
    /// The controller's tag found on it.
    pub key: String,
    /// Its value (the cluster, or the stack).
    pub value: String,
}

impl ControllerOwned {
    /// What was found: `ARN carries aws-load-balancer-controller's tag K=V`.
    pub fn summary(&self) -> String {
        format!(
            "{} carries aws-load-balancer-controller's tag {}={}",
            self.resource, self.key, self.value
        )
    }

    /// What to do instead.
    pub fn fix(&self) -> &'static str {
        "give the cell a listener (or rule) of a load balancer your infrastructure code makes, \
         and let the controller register the pods in okra's target groups (a TargetGroupBinding \
         per cluster)"
    }

    /// The error on `field`: what was found, why it matters, what to do.
    pub fn message(&self, field: &str) -> String {
        format!(
            "{field}: {}: the controller would set back okra's weights on its next reconcile; {}",
            self.summary(),
            self.fix()
        )
    }
}

/// The first resource (in the order given: load balancer, listener, rule) carrying one of the
/// controller's tags.
pub fn controller_owned(tagged: &[(String, Vec<(String, String)>)]) -> Option<ControllerOwned> {
    tagged.iter().find_map(|(resource, tags)| {
        tags.iter()
            .find(|(k, _)| CONTROLLER_TAG_KEYS.contains(&k.as_str()))
            .map(|(k, v)| ControllerOwned {
                resource: resource.clone(),
                key: k.clone(),
                value: v.clone(),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn a_controller_tag_anywhere_is_found_and_named() {
        let tagged = vec![
            ("lb".to_string(), tags(&[("team", "web")])),
            (
                "listener".to_string(),
                tags(&[("ingress.k8s.aws/stack", "web/prod")]),
            ),
        ];
        let owned = controller_owned(&tagged).unwrap();
        assert_eq!(owned.resource, "listener");
        assert_eq!(owned.key, "ingress.k8s.aws/stack");
        let m = owned.message("ingress.alb.listenerArn");
        assert!(
            m.starts_with("ingress.alb.listenerArn: listener carries"),
            "{m}"
        );
        assert!(m.contains("ingress.k8s.aws/stack=web/prod"), "{m}");
    }

    #[test]
    fn other_tags_are_not_the_controller_s() {
        let tagged = vec![("lb".to_string(), tags(&[("elbv2.k8s.aws/other", "x")]))];
        assert_eq!(controller_owned(&tagged), None);
        assert_eq!(controller_owned(&[]), None);
    }
}
