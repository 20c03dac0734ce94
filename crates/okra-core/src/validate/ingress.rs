//! The ingress, the clusters, the versions and the target group of a cell spec.

use super::*;

impl Validator<'_> {
    pub(super) fn ingress(&mut self) {
        let ingress = &self.spec.ingress;
        match (&ingress.alb, &ingress.nlb) {
            (None, None) => self.push(
                "ingress",
                "set exactly one of `alb` and `nlb`; neither is set",
            ),
            (Some(_), Some(_)) => {
                self.push("ingress", "set exactly one of `alb` and `nlb`, not both")
            }
            _ => {}
        }
        if let Some(alb) = &ingress.alb {
            let listener = self.listener_arn(
                "ingress.alb.listenerArn",
                &alb.listener_arn,
                LoadBalancerKind::Alb,
            );
            if let Some(rule) = &alb.rule_arn {
                self.rule_arn("ingress.alb.ruleArn", rule, listener.as_ref());
            }
        }
        if let Some(nlb) = &ingress.nlb {
            self.listener_arn(
                "ingress.nlb.listenerArn",
                &nlb.listener_arn,
                LoadBalancerKind::Nlb,
            );
        }
    }

    pub(super) fn listener_arn<'s>(
        &mut self,
        path: &str,
        arn: &'s str,
        kind: LoadBalancerKind,
    ) -> Option<ElbArn<'s>> {
        let (label, lb_type, other_label, other_path) = match kind {
            LoadBalancerKind::Alb => ("an ALB", "app", "an NLB", "ingress.nlb"),
            LoadBalancerKind::Nlb => ("an NLB", "net", "an ALB", "ingress.alb"),
        };
        let expected = format!(
            "expected arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:listener/{lb_type}/NAME/ID/ID"
        );
        match ElbArn::parse(arn, "listener") {
            Err(reason) => {
                self.push(
                    path,
                    format!("`{arn}` is not {label} listener ARN: {reason}; {expected}"),
                );
                None
            }
            Ok(parsed) if parsed.lb_type != lb_type => {
                self.push(
                    path,
                    format!(
                        "`{arn}` is {other_label} listener (listener/{}/...), not {label} \
                         listener; move it under `{other_path}` or use {label}'s listener",
                        parsed.lb_type
                    ),
                );
                None
            }
            Ok(parsed) => Some(parsed),
        }
    }

    pub(super) fn rule_arn(&mut self, path: &str, arn: &str, listener: Option<&ElbArn<'_>>) {
        let expected = "expected arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:\
                        listener-rule/app/NAME/ID/ID/ID";
        let rule = match ElbArn::parse(arn, "listener-rule") {
            Ok(rule) => rule,
            Err(reason) => {
                self.push(
                    path,
                    format!("`{arn}` is not an ALB listener rule ARN: {reason}; {expected}"),
                );
                return;
            }
        };
        if rule.lb_type != "app" {
            self.push(path, format!("`{arn}` is not an ALB listener rule ARN: it is not of an ALB (listener-rule/app/...)"));
            return;
        }
        if let Some(listener) = listener
            && !rule.same_listener(listener)
        {
            self.push(
                path,
                format!(
                    "the rule `{arn}` is not a rule of listenerArn `{}`; a rule must belong to the \
                     same load balancer and listener",
                    self.spec
                        .ingress
                        .alb
                        .as_ref()
                        .map_or("", |a| a.listener_arn.as_str())
                ),
            );
        }
    }

    pub(super) fn cluster_selector(&mut self) {
        let path = "clusterSelector.matchTags";
        let tags = &self.spec.cluster_selector.match_tags;
        if tags.is_empty() {
            self.push(
                path,
                "must hold at least one tag; with none, every EKS cluster of the account and region \
                 would belong to the cell",
            );
        }
        for (key, value) in tags {
            let len = key.chars().count();
            if key.is_empty() {
                self.push(path, "a tag key must not be empty");
            } else if len > MAX_TAG_KEY_LEN {
                let start: String = key.chars().take(20).collect();
                self.push(
                    path,
                    format!(
                        "the key `{start}...` is {len} characters long; an EKS tag key has at most \
                         {MAX_TAG_KEY_LEN}"
                    ),
                );
            }
            let vlen = value.chars().count();
            if vlen > MAX_TAG_VALUE_LEN {
                self.push(
                    path,
                    format!(
                        "the value of `{key}` is {vlen} characters long; an EKS tag value has at \
                         most {MAX_TAG_VALUE_LEN}"
                    ),
                );
            }
        }
        let vt = &self.spec.version_tag;
        if tags.contains_key(vt) {
            self.push(
                path,
                format!(
                    "must not hold the version tag `{vt}`: the clusters of a cell carry different \
                     versions in it, which is how okra tells them apart"
                ),
            );
        }
    }

    pub(super) fn version_tag(&mut self) {
        let vt = &self.spec.version_tag;
        let len = vt.chars().count();
        if vt.is_empty() {
            self.push("versionTag", "must not be empty");
        } else if len > MAX_TAG_KEY_LEN {
            self.push(
                "versionTag",
                format!("is {len} characters long; an EKS tag key has at most {MAX_TAG_KEY_LEN}"),
            );
        }
    }

    pub(super) fn replicas(&mut self) {
        let r = self.spec.replicas;
        if r == 0 {
            self.push(
                "replicas",
                "0 is not allowed: a version needs at least 1 cluster",
            );
            return;
        }
        let Some(kind) = self.kind() else { return };
        let max = MAX_TARGET_GROUPS_PER_ACTION;
        if self.spec.ingress.weighted() {
            if (r as usize).saturating_mul(2) > max {
                let lb = match kind {
                    LoadBalancerKind::Alb => "an ALB",
                    LoadBalancerKind::Nlb => "an NLB",
                };
                self.push(
                    "replicas",
                    format!(
                        "{r} cannot fit: a canary step forwards to {r} stable + {r} canary target \
                         groups, but {lb} forward action holds at most {max}; use at most {}",
                        max / 2
                    ),
                );
            }
        } else if r != 1 {
            self.push(
                "replicas",
                format!(
                    "{r} cannot fit: a blue/green NLB listener (weighted: false) forwards to one \
                     target group at a time, so 1 cluster serves a version; set replicas to 1, or \
                     weighted to true"
                ),
            );
        }
    }

    pub(super) fn version(&mut self) {
        if let Some(v) = &self.spec.version
            && let Err(e) = parse_version(v)
        {
            self.push(
                "version",
                format!("`{v}` is not a semver version such as 1.4.2 or v1.4.2: {e}"),
            );
        }
    }

    pub(super) fn target_group(&mut self) {
        let tg = &self.spec.target_group;
        let kind = self.kind();
        if tg.port == 0 {
            self.push("targetGroup.port", "0 is not in 1..=65535");
        }
        let p = match kind {
            Some(k) => tg.protocol_for(k),
            None => tg.protocol.as_deref().unwrap_or("HTTP"),
        };
        match kind {
            Some(LoadBalancerKind::Alb) if !matches!(p, "HTTP" | "HTTPS") => self.push(
                "targetGroup.protocol",
                format!("`{p}` is not an ALB target group protocol; use HTTP or HTTPS"),
            ),
            Some(LoadBalancerKind::Nlb) if !matches!(p, "TCP" | "TLS" | "UDP" | "TCP_UDP") => {
                self.push(
                    "targetGroup.protocol",
                    format!("`{p}` is not an NLB target group protocol; use TCP, TLS, UDP or TCP_UDP"),
                );
            }
            None if !matches!(p, "HTTP" | "HTTPS" | "TCP" | "TLS" | "UDP" | "TCP_UDP") => self.push(
                "targetGroup.protocol",
                format!("`{p}` is not a target group protocol: HTTP, HTTPS, TCP, TLS, UDP or TCP_UDP"),
            ),
            _ => {}
        }
        if tg.registration == Registration::Instances && tg.target_type != TargetType::Instance {
            self.push(
                "targetGroup.registration",
                "`instances` registers EC2 instance ids, which needs `targetType: instance`; \
                 pod IPs are registered by aws-load-balancer-controller (`registration: external`)",
            );
        }
        self.health_check(&tg.health_check, kind);
    }

    pub(super) fn health_check(&mut self, hc: &HealthCheck, kind: Option<LoadBalancerKind>) {
        const P: &str = "targetGroup.healthCheck";
        let interval_ok = match hc.interval_seconds {
            Some(i) if !(5..=300).contains(&i) => {
                self.push(
                    format!("{P}.intervalSeconds"),
                    format!("{i} is not in 5..=300"),
                );
                false
            }
            _ => true,
        };
        if let Some(t) = hc.timeout_seconds {
            if !(2..=120).contains(&t) {
                self.push(
                    format!("{P}.timeoutSeconds"),
                    format!("{t} is not in 2..=120"),
                );
            } else if interval_ok {
                match hc.interval_seconds {
                    Some(i) if t >= i => self.push(
                        format!("{P}.timeoutSeconds"),
                        format!("{t} must be less than intervalSeconds ({i})"),
                    ),
                    None if t >= DEFAULT_HEALTH_CHECK_INTERVAL => self.push(
                        format!("{P}.timeoutSeconds"),
                        format!(
                            "{t} must be less than the interval, ELB's default of \
                             {DEFAULT_HEALTH_CHECK_INTERVAL} seconds as intervalSeconds is not set"
                        ),
                    ),
                    _ => {}
                }
            }
        }
        for (field, value) in [
            ("healthyThreshold", hc.healthy_threshold),
            ("unhealthyThreshold", hc.unhealthy_threshold),
        ] {
            if let Some(n) = value
                && !(2..=10).contains(&n)
            {
                self.push(format!("{P}.{field}"), format!("{n} is not in 2..=10"));
            }
        }
        if let Some(port) = &hc.port
            && port != "traffic-port"
            && !port.parse::<u16>().is_ok_and(|p| p > 0)
        {
            self.push(
                format!("{P}.port"),
                format!("`{port}` is neither `traffic-port` nor a port number in 1..=65535"),
            );
        }
        if let Some(protocol) = &hc.protocol {
            match (protocol.as_str(), kind) {
                ("HTTP" | "HTTPS", _) => {}
                ("TCP", Some(LoadBalancerKind::Alb)) => self.push(
                    format!("{P}.protocol"),
                    "`TCP` is for NLB target groups; an ALB target group's health check is HTTP or \
                     HTTPS",
                ),
                ("TCP", _) => {
                    for (field, set) in [
                        ("path", hc.path.is_some()),
                        ("matcher", hc.matcher.is_some()),
                    ] {
                        if set {
                            self.push(
                                format!("{P}.{field}"),
                                format!("a TCP health check has no {field}; remove it or use HTTP"),
                            );
                        }
                    }
                }
                (other, _) => self.push(
                    format!("{P}.protocol"),
                    format!("`{other}` is not a health check protocol: HTTP, HTTPS or TCP"),
                ),
            }
        }
        if let Some(path) = &hc.path {
            if !path.starts_with('/') {
                self.push(format!("{P}.path"), format!("`{path}` must start with `/`"));
            } else if path.len() > 1024 {
                self.push(
                    format!("{P}.path"),
                    format!(
                        "is {} characters long; a health check path has at most 1024",
                        path.len()
                    ),
                );
            }
        }
        if let Some(m) = &hc.matcher {
            let (lo, hi) = match kind {
                Some(LoadBalancerKind::Alb) => (200, 499),
                _ => (200, 599),
            };
            if let Err(e) = check_matcher(m, lo, hi) {
                self.push(format!("{P}.matcher"), e);
            }
        }
    }

    pub(super) fn readiness(&mut self) {
        let r = &self.spec.readiness;
        if r.min_healthy_percent > 100 {
            self.push(
                "readiness.minHealthyPercent",
                format!("{} is not in 0..=100", r.min_healthy_percent),
            );
        }
        if let Some(d) = self.duration("readiness.timeout", &r.timeout)
            && d.is_zero()
        {
            self.push(
                "readiness.timeout",
                "must be more than 0s: the readiness gate would give up before it looked",
            );
        }
    }

    pub(super) fn stickiness(&mut self) {
        let Some(s) = &self.spec.stickiness else {
            return;
        };
        let path = "stickiness.duration";
        let Some(d) = self.duration(path, &s.duration) else {
            return;
        };
        if d < Duration::from_secs(1) || d > MAX_STICKINESS {
            self.push(
                path,
                format!(
                    "`{}` is not in 1s..=7d, the stickiness ELB accepts",
                    s.duration
                ),
            );
        } else if d.subsec_nanos() != 0 {
            self.push(
                path,
                format!(
                    "`{}` is not a whole number of seconds, as ELB's stickiness duration is",
                    s.duration
                ),
            );
        }
    }
}
