//! Amazon Resource Names, read by one parser.
//!
//! An ARN is `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` (AWS General Reference, "Amazon
//! Resource Names (ARNs)"); the resource may itself hold `:` and `/`. [`Arn::parse`] splits the
//! six parts; the functions below read the resources okra meets: Elastic Load Balancing
//! listeners, rules, load balancers and target groups, EKS clusters, Step Functions state
//! machines and executions. [`ListenerArn`] and [`RuleArn`] are ARNs checked once, as a
//! validated [`crate::cell::Cell`] holds them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The partitions an ARN may name.
pub const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

/// The six parts of an ARN, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'s> {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: &'s str,
    /// `elasticloadbalancing`, `eks`, `states`, ...
    pub service: &'s str,
    /// `us-east-1`; empty for global resources.
    pub region: &'s str,
    /// The 12-digit account id.
    pub account: &'s str,
    /// Everything after the fifth `:`.
    pub resource: &'s str,
}

impl<'s> Arn<'s> {
    /// Splits an ARN into its six parts, checking only that there are six and the first is
    /// `arn`; the error says what is wrong.
    pub fn parse(text: &'s str) -> Result<Self, String> {
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err("it does not have the six `:`-separated parts of an ARN".to_string());
        };
        if prefix != "arn" {
            return Err("it does not start with `arn:`".to_string());
        }
        Ok(Self {
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    /// Checks what AWS fixes for a regional resource of `service`: a known partition, the
    /// service, a region in that partition, a 12-digit account.
    pub fn check_regional(&self, service: &str) -> Result<(), String> {
        let Self {
            partition,
            region,
            account,
            ..
        } = *self;
        if !PARTITIONS.contains(&partition) {
            return Err(format!(
                "`{partition}` is not a partition: aws, aws-cn or aws-us-gov"
            ));
        }
        if self.service != service {
            return Err(format!(
                "its service is `{}`, not `{service}`",
                self.service
            ));
        }
        if !is_region(region) {
            return Err(format!("`{region}` is not a region such as us-east-1"));
        }
        let expected = partition_of(region);
        if partition != expected {
            return Err(format!(
                "region `{region}` is in partition `{expected}`, not `{partition}`"
            ));
        }
        if !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("`{account}` is not a 12-digit account id"));
        }
        Ok(())
    }
}

/// Checks an IAM role ARN, `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME` (IAM User Guide, "IAM
/// identifiers": global, no region; a name of 1-64 characters `[\w+=,.@-]`).
///
/// ```
/// assert!(okra_core::arn::check_role_arn("arn:aws:iam::111122223333:role/okra-amp").is_ok());
/// assert!(okra_core::arn::check_role_arn("arn:aws:iam:eu-west-1:111122223333:role/x").is_err());
/// assert!(okra_core::arn::check_role_arn("arn:aws:iam::111122223333:user/x").is_err());
/// ```
pub fn check_role_arn(text: &str) -> Result<(), String> {
    let arn = Arn::parse(text)?;
    if !matches!(arn.partition, "aws" | "aws-cn" | "aws-us-gov") {
        return Err(format!("`{}` is not a partition", arn.partition));
    }
    if arn.service != "iam" || !arn.region.is_empty() {
        return Err("not an IAM ARN (`arn:aws:iam::ACCOUNT:role/NAME`, no region)".into());
    }
    if arn.account.len() != 12 || !arn.account.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the account is not 12 digits".into());
    }
    let Some(path_name) = arn.resource.strip_prefix("role/") else {
        return Err("not a role (`role/NAME`)".into());
    };
    let name = path_name.rsplit('/').next().unwrap_or_default();
    let ok = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
        return Err("the role name is not 1-64 characters of letters, digits and _+=,.@-".into());
    }
    Ok(())
}

/// Checks an EKS cluster name: 1-100 characters of letters, digits, `-` and `_`, starting with a
/// letter or digit (EKS API reference, CreateCluster `name`).
///
/// # Errors
///
/// Why not, in words.
///
/// ```
/// assert!(okra_core::arn::check_eks_cluster_name("hub-1").is_ok());
/// assert!(okra_core::arn::check_eks_cluster_name("-hub").is_err());
/// ```
pub fn check_eks_cluster_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an EKS cluster name: 1-100 characters of letters, digits, - and _, \
             starting with a letter or digit"
        ))
    }
}

/// The partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `us-east-1`, `ap-southeast-7`, `us-gov-west-1`: two letters, words, a number.
pub fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A load balancer's name: 1-32 of `a-z`, `A-Z`, `0-9` and `-`, no `-` at either end.
pub fn is_lb_name(n: &str) -> bool {
    (1..=32).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-')
}

/// An Elastic Load Balancing id: 16 lower-case hex digits.
pub fn is_elb_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The parts of an Elastic Load Balancing load balancer, listener or listener rule ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElbArn<'s> {
    /// The six parts.
    pub arn: Arn<'s>,
    /// `app` or `net`.
    pub lb_type: &'s str,
    /// The load balancer's name.
    pub lb_name: &'s str,
    /// Load balancer id, listener id, and (for a rule) rule id.
    pub ids: Vec<&'s str>,
}

impl<'s> ElbArn<'s> {
    /// Parses `arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:RESOURCE/app|net/NAME/ID...`
    /// with `RESOURCE` = `resource` (`loadbalancer`, `listener` or `listener-rule`: one, two or
    /// three ids); the error says what is wrong.
    pub fn parse(text: &'s str, resource: &str) -> Result<Self, String> {
        let arn = Arn::parse(text)?;
        arn.check_regional("elasticloadbalancing")?;
        let segments: Vec<&str> = arn.resource.split('/').collect();
        let id_count = match resource {
            "loadbalancer" => 1,
            "listener-rule" => 3,
            _ => 2,
        };
        let kind = segments.first().copied().unwrap_or_default();
        if kind != resource {
            return Err(format!("its resource is a `{kind}`, not a `{resource}`"));
        }
        if segments.len() != 3 + id_count {
            return Err(format!(
                "`{}` does not have the {} `/`-separated parts of a {resource}",
                arn.resource,
                3 + id_count
            ));
        }
        let lb_type = segments[1];
        if !matches!(lb_type, "app" | "net") {
            return Err(format!(
                "`{lb_type}` is not a load balancer type: `app` (ALB) or `net` (NLB)"
            ));
        }
        let lb_name = segments[2];
        if !is_lb_name(lb_name) {
            return Err(format!(
                "`{lb_name}` is not a load balancer name: 1-32 of a-z, A-Z, 0-9 and -, with no - at \
                 either end"
            ));
        }
        let ids = segments[3..].to_vec();
        if let Some(bad) = ids.iter().find(|id| !is_elb_id(id)) {
            return Err(format!("`{bad}` is not an id of 16 lower-case hex digits"));
        }
        Ok(Self {
            arn,
            lb_type,
            lb_name,
            ids,
        })
    }

    /// Whether this rule (or listener) ARN is of the listener `listener`.
    pub fn same_listener(&self, listener: &ElbArn<'_>) -> bool {
        let (a, b) = (&self.arn, &listener.arn);
        a.partition == b.partition
            && a.region == b.region
            && a.account == b.account
            && self.lb_type == listener.lb_type
            && self.lb_name == listener.lb_name
            && self.ids.len() >= 2
            && listener.ids.len() >= 2
            && self.ids[..2] == listener.ids[..2]
    }

    /// The ARN of this listener's (or rule's) load balancer.
    pub fn load_balancer_arn(&self) -> String {
        let a = &self.arn;
        format!(
            "arn:{}:elasticloadbalancing:{}:{}:loadbalancer/{}",
            a.partition,
            a.region,
            a.account,
            self.load_balancer_dimension()
        )
    }

    /// `app/NAME/ID`: the load balancer, as CloudWatch's `LoadBalancer` dimension names it.
    pub fn load_balancer_dimension(&self) -> String {
        format!(
            "{}/{}/{}",
            self.lb_type,
            self.lb_name,
            self.ids.first().copied().unwrap_or_default()
        )
    }
}

/// `arn:…:loadbalancer/app/web/ID` or a listener (rule) ARN `arn:…:listener/app/web/ID/ID` →
/// `app/web/ID` (CloudWatch's `LoadBalancer` dimension). Only the resource is read.
pub fn load_balancer_dimension(arn: &str) -> Option<String> {
    let resource = Arn::parse(arn).ok()?.resource;
    let rest = ["listener/", "listener-rule/", "loadbalancer/"]
        .iter()
        .find_map(|p| resource.strip_prefix(p))?;
    let parts: Vec<&str> = rest.split('/').collect();
    (parts.len() >= 3).then(|| parts[..3].join("/"))
}

/// `arn:…:targetgroup/NAME/ID` → `targetgroup/NAME/ID` (CloudWatch's `TargetGroup` dimension).
pub fn target_group_dimension(arn: &str) -> Option<&str> {
    let resource = Arn::parse(arn).ok()?.resource;
    (resource.starts_with("targetgroup/") && resource.split('/').count() == 3).then_some(resource)
}

/// `arn:…:targetgroup/NAME/ID` → `NAME`.
pub fn target_group_name(arn: &str) -> Option<&str> {
    let resource = Arn::parse(arn).ok()?.resource;
    resource.strip_prefix("targetgroup/")?.split('/').next()
}

/// The cluster name of an EKS cluster ARN (`arn:aws:eks:REGION:ACCOUNT:cluster/NAME`); `None`
/// for other EKS resources (node groups, add-ons, ...).
pub fn eks_cluster_name(arn: &str) -> Option<&str> {
    let arn = Arn::parse(arn).ok()?;
    let name = arn.resource.strip_prefix("cluster/")?;
    (arn.service == "eks" && !name.is_empty() && !name.contains('/')).then_some(name)
}

/// `arn:PARTITION:states:REGION:ACCOUNT:stateMachine:SM` + `NAME` →
/// `arn:PARTITION:states:REGION:ACCOUNT:execution:SM:NAME`; `None` for another ARN.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> Option<String> {
    let arn = Arn::parse(state_machine_arn).ok()?;
    let sm = arn.resource.strip_prefix("stateMachine:")?;
    (arn.service == "states" && !sm.is_empty() && !sm.contains(':')).then(|| {
        format!(
            "arn:{}:states:{}:{}:execution:{sm}:{name}",
            arn.partition, arn.region, arn.account
        )
    })
}

/// An execution's name from its ARN (`arn:…:execution:SM:NAME` → `NAME`).
pub fn execution_name(execution_arn: &str) -> Option<&str> {
    let arn = Arn::parse(execution_arn).ok()?;
    let (_, name) = arn.resource.strip_prefix("execution:")?.split_once(':')?;
    (arn.service == "states" && !name.is_empty()).then_some(name)
}

/// A load balancer listener's ARN, checked ([`ElbArn::parse`]): an ALB's (`listener/app/...`)
/// or an NLB's (`listener/net/...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListenerArn(String);

/// An ALB listener rule's ARN, checked ([`ElbArn::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RuleArn(String);

macro_rules! checked_arn {
    ($ty:ident, $resource:literal) => {
        impl $ty {
            /// The ARN's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Its parts.
            pub fn parts(&self) -> ElbArn<'_> {
                ElbArn::parse(&self.0, $resource).expect("checked when made")
            }
        }

        impl TryFrom<String> for $ty {
            type Error = String;

            fn try_from(text: String) -> Result<Self, String> {
                ElbArn::parse(&text, $resource)?;
                Ok(Self(text))
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                Self::try_from(text.to_string())
            }
        }

        impl From<$ty> for String {
            fn from(arn: $ty) -> String {
                arn.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_arn!(ListenerArn, "listener");
checked_arn!(RuleArn, "listener-rule");

#[cfg(test)]
mod tests {
    use super::*;

    const L: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const R: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";

    #[test]
    fn elb_arns() {
        let a = ElbArn::parse(L, "listener").unwrap();
        assert_eq!(a.lb_type, "app");
        assert_eq!(a.lb_name, "web");
        assert_eq!(a.ids, ["50dc6c495c0c9188", "f2f7dc8efc522ab2"]);
        assert_eq!(a.load_balancer_dimension(), "app/web/50dc6c495c0c9188");
        assert!(ElbArn::parse(R, "listener-rule").unwrap().same_listener(&a));
        assert!(ElbArn::parse(R, "listener").is_err());
        assert!(ElbArn::parse(L, "listener-rule").is_err());
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/n/50dc6c495c0c9188";
        assert_eq!(ElbArn::parse(lb, "loadbalancer").unwrap().lb_type, "net");
        for bad in [
            "",
            "arn",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/gwy/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/-web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50DC6C495C0C9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:12345678901:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:cn-north-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:ec2:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
            "urn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
        ] {
            assert!(ElbArn::parse(bad, "listener").is_err(), "{bad}");
            assert!(bad.parse::<ListenerArn>().is_err(), "{bad}");
        }
        for good in [
            "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:listener/net/a/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:listener/app/A-1/50dc6c495c0c9188/f2f7dc8efc522ab2",
        ] {
            assert!(ElbArn::parse(good, "listener").is_ok(), "{good}");
        }
    }

    #[test]
    fn checked_arns_read_and_write_as_text() {
        let l: ListenerArn = serde_json::from_str(&format!("\"{L}\"")).unwrap();
        assert_eq!(l.as_str(), L);
        assert_eq!(serde_json::to_string(&l).unwrap(), format!("\"{L}\""));
        let r: RuleArn = R.parse().unwrap();
        assert!(r.parts().same_listener(&l.parts()));
        let err = serde_json::from_str::<RuleArn>(&format!("\"{L}\"")).unwrap_err();
        assert!(err.to_string().contains("not a `listener-rule`"), "{err}");
    }

    #[test]
    fn resources_of_other_services() {
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/okra-web-a/0123456789abcdef";
        assert_eq!(target_group_name(tg), Some("okra-web-a"));
        assert_eq!(
            target_group_dimension(tg),
            Some("targetgroup/okra-web-a/0123456789abcdef")
        );
        assert_eq!(target_group_name(L), None);
        assert_eq!(target_group_dimension(L), None);
        assert_eq!(
            load_balancer_dimension(L).as_deref(),
            Some("app/web/50dc6c495c0c9188")
        );
        assert_eq!(
            load_balancer_dimension(R).as_deref(),
            Some("app/web/50dc6c495c0c9188")
        );
        assert_eq!(load_balancer_dimension(tg), None);

        assert_eq!(
            eks_cluster_name("arn:aws:eks:us-east-1:123456789012:cluster/web-1"),
            Some("web-1")
        );
        for other in [
            "arn:aws:eks:us-east-1:123456789012:nodegroup/web-1/ng/abc",
            "arn:aws:eks:us-east-1:123456789012:cluster/",
            "arn:aws:ec2:us-east-1:123456789012:cluster/web-1",
            "web-1",
        ] {
            assert_eq!(eks_cluster_name(other), None, "{other}");
        }

        let sm = "arn:aws-cn:states:cn-north-1:123456789012:stateMachine:okra-rollout";
        let ex = execution_arn(sm, "web--1-2-0--0").unwrap();
        assert_eq!(
            ex,
            "arn:aws-cn:states:cn-north-1:123456789012:execution:okra-rollout:web--1-2-0--0"
        );
        assert_eq!(execution_name(&ex), Some("web--1-2-0--0"));
        assert_eq!(execution_arn(L, "x"), None);
        assert_eq!(
            execution_arn("arn:aws:states:us-east-1:123456789012:stateMachine:", "x"),
            None
        );
        assert_eq!(execution_name(sm), None);
    }
}
