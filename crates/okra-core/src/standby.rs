//! Standing new target groups by without touching the user's own action.
//!
//! AWS health-checks only the targets of groups that a listener rule forwards to (ALB guide,
//! "Health checks for Application Load Balancer target groups"). When the owned action already
//! forwards, new groups join it at weight 0. When it does not — a fixed-response maintenance page
//! or a redirect, before okra's first switch — joining it would replace the user's page with a
//! forward to groups at weight 0 (503s while the readiness gate waits). Instead the groups stand
//! by in a rule of their own whose condition never matches: source IP `255.255.255.255/32`, the
//! limited broadcast address, which is never the source of a TCP connection (RFC 919 / RFC 1122
//! 3.2.1.3), and an `x-okra-standby` header naming the owned action, which identifies the rule.
//! The owned action answers as before until the first switch, which removes the rule.

/// The standby rule's source-IP condition, which no client matches.
pub const SOURCE_IP: &str = "255.255.255.255/32";
/// The header condition that names the owned action the standby rule serves.
pub const HEADER: &str = "x-okra-standby";
/// The lowest rule priority (the last evaluated) an ALB listener takes (CreateRule: 1-50000).
pub const LOWEST_PRIORITY: u32 = 50_000;

/// The header value naming the owned action: the rule's id, or `default` for the listener's
/// default action.
pub fn owner(rule_arn: Option<&str>) -> String {
    match rule_arn {
        Some(r) => r.rsplit('/').next().unwrap_or(r).to_string(),
        None => "default".to_string(),
    }
}

/// The highest free priority (evaluated last), given the listener's rules' priorities.
pub fn free_priority(used: &[u32]) -> Option<u32> {
    (1..=LOWEST_PRIORITY).rev().find(|p| !used.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_names_its_owner_and_takes_the_last_free_priority() {
        assert_eq!(owner(None), "default");
        assert_eq!(
            owner(Some(
                "arn:aws:elasticloadbalancing:eu-west-1:1:listener-rule/app/lb/50dc/f2f7/9683b2d0"
            )),
            "9683b2d0"
        );
        assert_eq!(free_priority(&[]), Some(50_000));
        assert_eq!(free_priority(&[50_000, 49_999, 10]), Some(49_998));
    }
}
