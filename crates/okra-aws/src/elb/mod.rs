//! [`LoadBalancerPort`] over aws-sdk-elasticloadbalancingv2.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2 as elb;
use elb::types::{
    Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, Tag, TargetGroupStickinessConfig,
    TargetGroupTuple, TargetHealthReasonEnum, TargetHealthStateEnum, TargetTypeEnum,
};
use okra_core::doctor::LoadBalancerFacts;
use okra_core::model::{
    CurrentAction, ForwardAction, ForwardStickiness, TAG_CELL, TAG_CLUSTER, TAG_VERSION,
    TargetGroup, WeightedTarget,
};
use okra_core::spec::TargetType;

use crate::error::{OkraError, Result};
use crate::ports::{LoadBalancerPort, NewTargetGroup, Owned, TargetHealth};
use crate::tagging::{TARGET_GROUP, Tagging};

/// DescribeTargetGroups returns at most this many per page.
pub const DESCRIBE_TARGET_GROUPS_PAGE: i32 = 400;
/// DescribeTags takes at most this many ARNs.
pub const DESCRIBE_TAGS_BATCH: usize = 20;

/// The ELBv2 adapter: okra's target groups found by tag through the tagging API.
#[derive(Debug, Clone)]
pub struct Elb {
    client: elb::Client,
    tagging: Tagging,
}

impl Elb {
    /// Wraps the clients.
    pub fn new(client: elb::Client, tagging: Tagging) -> Self {
        Self { client, tagging }
    }

    /// Both clients from one configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(
            elb::Client::new(config),
            Tagging::new(aws_sdk_resourcegroupstagging::Client::new(config)),
        )
    }
}

mod actions;

pub use actions::*;

impl Elb {
    /// One listener (DescribeListeners).
    async fn listener(&self, listener_arn: &str) -> Result<elb::types::Listener> {
        let out = self
            .client
            .describe_listeners()
            .listener_arns(listener_arn)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        out.listeners()
            .first()
            .cloned()
            .ok_or_else(|| OkraError::ListenerNotFound(listener_arn.to_string(), None))
    }

    async fn listener_actions(&self, listener_arn: &str) -> Result<Vec<Action>> {
        Ok(self
            .listener(listener_arn)
            .await?
            .default_actions()
            .to_vec())
    }

    /// Every rule of a listener (DescribeRules, every page).
    async fn listener_rules(&self, listener_arn: &str) -> Result<Vec<elb::types::Rule>> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .client
                .describe_rules()
                .listener_arn(listener_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
            out.extend(page.rules().iter().cloned());
            match page.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn rule_actions(&self, rule_arn: &str) -> Result<Vec<Action>> {
        let out = self
            .client
            .describe_rules()
            .rule_arns(rule_arn)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        let r = out
            .rules()
            .first()
            .ok_or_else(|| OkraError::RuleNotFound(rule_arn.to_string(), None))?;
        Ok(r.actions().to_vec())
    }
}

impl Elb {
    /// The ARN and VPC of a listener's load balancer (DescribeListeners, DescribeLoadBalancers).
    /// The listener's load balancer: its ARN, VPC, security groups and subnets. Two calls.
    async fn listener_load_balancer(&self, listener_arn: &str) -> Result<(String, LbFacts)> {
        let lb = self
            .listener(listener_arn)
            .await?
            .load_balancer_arn()
            .ok_or_else(|| OkraError::ListenerNotFound(listener_arn.to_string(), None))?
            .to_string();
        let out = self
            .client
            .describe_load_balancers()
            .load_balancer_arns(&lb)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        let b = out.load_balancers().first();
        let vpc_id = b
            .and_then(|b| b.vpc_id())
            .map(str::to_string)
            .ok_or_else(|| OkraError::Aws {
                code: "LoadBalancerNotFound".into(),
                message: format!("load balancer {lb} of listener {listener_arn} has no VPC"),
                cause: None,
            })?;
        let facts = LbFacts {
            vpc_id,
            security_groups: b.map(|b| b.security_groups().to_vec()).unwrap_or_default(),
            subnets: b
                .map(|b| {
                    b.availability_zones()
                        .iter()
                        .filter_map(|z| z.subnet_id().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            zones: b
                .map(|b| {
                    b.availability_zones()
                        .iter()
                        .filter_map(|z| z.zone_name().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok((lb, facts))
    }

    /// The targets of a group with their health states (DescribeTargetHealth: one call, every
    /// target).
    async fn target_states(
        &self,
        arn: &str,
    ) -> Result<
        Vec<(
            String,
            Option<TargetHealthStateEnum>,
            Option<TargetHealthReasonEnum>,
        )>,
    > {
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .map(|d| {
                let id = d.target().and_then(|t| t.id()).unwrap_or_default();
                (
                    id.to_string(),
                    d.target_health().and_then(|t| t.state()).cloned(),
                    d.target_health().and_then(|t| t.reason()).cloned(),
                )
            })
            .collect())
    }
}

/// Whether `r` is a standby rule ([`okra_core::standby`]) of any owner.
fn is_any_standby(r: &elb::types::Rule) -> bool {
    let conds = r.conditions();
    conds.iter().any(|c| {
        c.source_ip_config()
            .is_some_and(|s| s.values() == [okra_core::standby::SOURCE_IP])
    }) && conds.iter().any(|c| {
        c.http_header_config()
            .is_some_and(|h| h.http_header_name() == Some(okra_core::standby::HEADER))
    })
}

/// The weight a forward action among `actions` gives `group`, if it names it.
fn weight_in(actions: &[Action], group: &str) -> Option<u32> {
    actions
        .iter()
        .filter(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
        .flat_map(|a| to_forward(a).targets)
        .find(|t| t.target_group_arn == group)
        .map(|t| t.weight)
}

/// Whether `r` is the standby rule of `owner` ([`okra_core::standby`]).
fn is_standby(r: &elb::types::Rule, owner: &str) -> bool {
    let conds = r.conditions();
    let ip = conds.iter().any(|c| {
        c.source_ip_config()
            .is_some_and(|s| s.values() == [okra_core::standby::SOURCE_IP])
    });
    let header = conds.iter().any(|c| {
        c.http_header_config().is_some_and(|h| {
            h.http_header_name() == Some(okra_core::standby::HEADER) && h.values() == [owner]
        })
    });
    ip && header
}

/// A load balancer as read, before the doctor's target-group count.
struct LbFacts {
    vpc_id: String,
    security_groups: Vec<String>,
    subnets: Vec<String>,
    zones: Vec<String>,
}

/// Targets per RegisterTargets / DeregisterTargets call, to keep each request small.
pub const TARGETS_BATCH: usize = 100;

/// `ids` as target descriptions (on the group's port), [`TARGETS_BATCH`] a call.
fn batches(ids: &[String]) -> impl Iterator<Item = Vec<elb::types::TargetDescription>> + '_ {
    ids.chunks(TARGETS_BATCH).map(|chunk| {
        chunk
            .iter()
            .map(|id| elb::types::TargetDescription::builder().id(id).build())
            .collect()
    })
}

impl LoadBalancerPort for Elb {
    type Raw = Vec<Action>;

    async fn load_balancer_vpc(&self, listener_arn: &str) -> Result<String> {
        Ok(self.listener_load_balancer(listener_arn).await?.1.vpc_id)
    }

    async fn resource_tags(&self, arns: &[String]) -> Result<okra_core::owner::Tagged> {
        let out = self
            .client
            .describe_tags()
            .set_resource_arns(Some(arns.to_vec()))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(arns
            .iter()
            .map(|arn| {
                let tags = out
                    .tag_descriptions()
                    .iter()
                    .filter(|d| d.resource_arn() == Some(arn.as_str()))
                    .flat_map(|d| d.tags())
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_string(),
                            t.value().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect();
                (arn.clone(), tags)
            })
            .collect())
    }

    async fn load_balancer(&self, listener_arn: &str) -> Result<LoadBalancerFacts> {
        let (lb, facts) = self.listener_load_balancer(listener_arn).await?;
        let mut pages = self
            .client
            .describe_target_groups()
            .load_balancer_arn(&lb)
            .page_size(DESCRIBE_TARGET_GROUPS_PAGE)
            .into_paginator()
            .send();
        let mut target_groups = 0;
        while let Some(page) = pages.next().await {
            match page.map_err(OkraError::from_sdk) {
                Ok(p) => target_groups += p.target_groups().len(),
                // A load balancer without target groups may be answered as "not found" (moto
                // does): none.
                Err(OkraError::TargetGroupNotFound(..)) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(LoadBalancerFacts {
            vpc_id: facts.vpc_id,
            target_groups,
            security_groups: facts.security_groups,
            subnets: facts.subnets,
            zones: facts.zones,
        })
    }

    async fn read_action(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
    ) -> Result<Owned<Vec<Action>>> {
        let actions = match rule_arn {
            Some(r) => self.rule_actions(r).await?,
            None => self.listener_actions(listener_arn).await?,
        };
        Ok(Owned {
            action: current_of(&actions),
            raw: actions,
        })
    }

    async fn standby_rule(
        &self,
        listener_arn: &str,
        owner: &str,
    ) -> Result<Option<(String, Vec<String>)>> {
        let rules = self.listener_rules(listener_arn).await?;
        Ok(rules.iter().find(|r| is_standby(r, owner)).map(|r| {
            (
                r.rule_arn().unwrap_or_default().to_string(),
                current_of(r.actions()).target_group_arns(),
            )
        }))
    }

    async fn put_standby_rule(
        &self,
        listener_arn: &str,
        owner: &str,
        existing: Option<&str>,
        groups: &[String],
    ) -> Result<()> {
        // Weight 1 each: the rule never matches, so the weights only have to be valid.
        let fa = ForwardAction {
            targets: groups
                .iter()
                .map(|g| WeightedTarget {
                    target_group_arn: g.clone(),
                    weight: 1,
                })
                .collect(),
            stickiness: None,
        };
        let actions = vec![from_forward(&fa, Some(1))];
        if let Some(arn) = existing {
            self.client
                .modify_rule()
                .rule_arn(arn)
                .set_actions(Some(actions))
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
            return Ok(());
        }
        let rules = self.listener_rules(listener_arn).await?;
        let used: Vec<u32> = rules
            .iter()
            .filter_map(|r| r.priority()?.parse().ok())
            .collect();
        let priority = okra_core::standby::free_priority(&used).ok_or_else(|| {
            OkraError::WeightsNotPossible(format!(
                "listener {listener_arn} has no free rule priority for a standby rule"
            ))
        })?;
        let conditions = vec![
            elb::types::RuleCondition::builder()
                .field("source-ip")
                .source_ip_config(
                    elb::types::SourceIpConditionConfig::builder()
                        .values(okra_core::standby::SOURCE_IP)
                        .build(),
                )
                .build(),
            elb::types::RuleCondition::builder()
                .field("http-header")
                .http_header_config(
                    elb::types::HttpHeaderConditionConfig::builder()
                        .http_header_name(okra_core::standby::HEADER)
                        .values(owner)
                        .build(),
                )
                .build(),
        ];
        self.client
            .create_rule()
            .listener_arn(listener_arn)
            .priority(i32::try_from(priority).unwrap_or(50_000))
            .set_conditions(Some(conditions))
            .set_actions(Some(actions))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }

    async fn delete_rule(&self, rule_arn: &str) -> Result<()> {
        match self
            .client
            .delete_rule()
            .rule_arn(rule_arn)
            .send()
            .await
            .map_err(OkraError::from_sdk)
        {
            Ok(_) | Err(OkraError::RuleNotFound(..)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn write_forward(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
        read: &Vec<Action>,
        fa: &ForwardAction,
    ) -> Result<()> {
        let new_actions = replace_forward(read, fa);
        match rule_arn {
            Some(r) => {
                self.client
                    .modify_rule()
                    .rule_arn(r)
                    .set_actions(Some(new_actions))
                    .send()
                    .await
                    .map_err(OkraError::from_sdk)?;
            }
            None => {
                self.client
                    .modify_listener()
                    .listener_arn(listener_arn)
                    .set_default_actions(Some(new_actions))
                    .send()
                    .await
                    .map_err(OkraError::from_sdk)?;
            }
        }
        Ok(())
    }

    async fn find_target_groups(
        &self,
        cell: &str,
        candidate_arns: &[String],
    ) -> Result<Vec<TargetGroup>> {
        let tagged = self
            .tagging
            .find(
                TARGET_GROUP,
                &BTreeMap::from([(TAG_CELL.to_string(), cell.to_string())]),
            )
            .await?;
        let mut found: Vec<TargetGroup> = tagged
            .iter()
            .filter_map(|r| cell_group(cell, &r.arn, &r.tags))
            .collect();
        // The listener's groups are read directly (the tagging API may lag behind a group made a
        // moment ago).
        let known: BTreeSet<&str> = found.iter().map(|g| g.arn.as_str()).collect();
        let arns: Vec<String> = candidate_arns
            .iter()
            .filter(|a| !known.contains(a.as_str()))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for batch in arns.chunks(DESCRIBE_TAGS_BATCH) {
            let out = self
                .client
                .describe_tags()
                .set_resource_arns(Some(batch.to_vec()))
                .send()
                .await;
            let out = match out.map_err(OkraError::from_sdk) {
                Ok(o) => o,
                // A group deleted between list and tags: read the batch one by one.
                Err(OkraError::TargetGroupNotFound(..)) => {
                    let mut descs = Vec::new();
                    for arn in batch {
                        match self.client.describe_tags().resource_arns(arn).send().await {
                            Ok(o) => descs.extend(o.tag_descriptions().to_vec()),
                            Err(e) => {
                                let e = OkraError::from_sdk(e);
                                if e.error_type() != "TargetGroupNotFound" {
                                    return Err(e);
                                }
                            }
                        }
                    }
                    elb::operation::describe_tags::DescribeTagsOutput::builder()
                        .set_tag_descriptions(Some(descs))
                        .build()
                }
                Err(e) => return Err(e),
            };
            for d in out.tag_descriptions() {
                if let Some(arn) = d.resource_arn() {
                    found.extend(cell_group(cell, arn, &tags_to_map(d.tags())));
                }
            }
        }
        found.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok(found)
    }

    async fn find_cells_target_groups(
        &self,
        cells: &[String],
    ) -> Result<Vec<(String, TargetGroup)>> {
        Ok(self
            .tagging
            .find_any(TARGET_GROUP, TAG_CELL, cells)
            .await?
            .iter()
            .filter_map(|r| {
                let cell = r.tags.get(TAG_CELL)?;
                cell_group(cell, &r.arn, &r.tags).map(|g| (cell.clone(), g))
            })
            .collect())
    }

    async fn create_target_group(&self, tg: &NewTargetGroup) -> Result<String> {
        let t = &tg.template;
        let hc = &t.health_check;
        let to_i32 = |v: Option<u32>| v.map(|x| i32::try_from(x).unwrap_or(i32::MAX));
        let out = self
            .client
            .create_target_group()
            .name(&tg.name)
            .vpc_id(&tg.vpc_id)
            .port(i32::from(t.port))
            .protocol(ProtocolEnum::from(tg.protocol.as_str()))
            .target_type(match t.target_type {
                TargetType::Instance => TargetTypeEnum::Instance,
                TargetType::Ip => TargetTypeEnum::Ip,
            })
            .set_health_check_path(hc.path.clone())
            .set_health_check_port(hc.port.clone())
            .set_health_check_protocol(hc.protocol.as_deref().map(ProtocolEnum::from))
            .set_health_check_interval_seconds(to_i32(hc.interval_seconds))
            .set_health_check_timeout_seconds(to_i32(hc.timeout_seconds))
            .set_healthy_threshold_count(to_i32(hc.healthy_threshold))
            .set_unhealthy_threshold_count(to_i32(hc.unhealthy_threshold))
            .set_matcher(
                hc.matcher
                    .as_ref()
                    .map(|m| elb::types::Matcher::builder().http_code(m).build()),
            )
            .set_tags(Some(sdk_tags(&tg.tags)))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        out.target_groups()
            .first()
            .and_then(|g| g.target_group_arn())
            .map(str::to_string)
            .ok_or_else(|| OkraError::Aws {
                code: "EmptyResponse".into(),
                message: format!("CreateTargetGroup {} returned no group", tg.name),
                cause: None,
            })
    }

    async fn target_group_by_name(&self, name: &str) -> Result<Option<String>> {
        match self
            .client
            .describe_target_groups()
            .names(name)
            .send()
            .await
            .map_err(OkraError::from_sdk)
        {
            Ok(out) => Ok(out
                .target_groups()
                .first()
                .and_then(|g| g.target_group_arn())
                .map(str::to_string)),
            Err(OkraError::TargetGroupNotFound(..)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn untag_target_group(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.client
            .remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }

    async fn forward_uses(&self, arn: &str) -> Result<Vec<okra_core::retire::ForwardUse>> {
        use okra_core::retire::ForwardUse;
        let out = match self
            .client
            .describe_target_groups()
            .target_group_arns(arn)
            .send()
            .await
            .map_err(OkraError::from_sdk)
        {
            Ok(o) => o,
            Err(OkraError::TargetGroupNotFound(..)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let lbs: BTreeSet<String> = out
            .target_groups()
            .iter()
            .flat_map(|g| g.load_balancer_arns().iter().cloned())
            .collect();
        let mut uses = Vec::new();
        for lb in lbs {
            let listeners = self
                .client
                .describe_listeners()
                .load_balancer_arn(&lb)
                .into_paginator()
                .items()
                .send()
                .collect::<std::result::Result<Vec<_>, _>>()
                .await
                .map_err(OkraError::from_sdk)?;
            for l in listeners {
                let Some(larn) = l.listener_arn() else {
                    continue;
                };
                if let Some(weight) = weight_in(l.default_actions(), arn) {
                    uses.push(ForwardUse {
                        arn: larn.to_string(),
                        rule: false,
                        standby: false,
                        weight,
                    });
                }
                for r in self.listener_rules(larn).await? {
                    if let (Some(rarn), Some(weight)) = (r.rule_arn(), weight_in(r.actions(), arn))
                    {
                        uses.push(ForwardUse {
                            arn: rarn.to_string(),
                            rule: true,
                            standby: is_any_standby(&r),
                            weight,
                        });
                    }
                }
            }
        }
        Ok(uses)
    }

    async fn remove_forward(
        &self,
        use_: &okra_core::retire::ForwardUse,
        group_arn: &str,
    ) -> Result<()> {
        let actions = if use_.rule {
            self.rule_actions(&use_.arn).await?
        } else {
            self.listener_actions(&use_.arn).await?
        };
        let mut fa = match current_of(&actions) {
            CurrentAction::Forward(fa) => fa,
            CurrentAction::Other { .. } => return Ok(()),
        };
        let before = fa.targets.len();
        fa.targets.retain(|t| t.target_group_arn != group_arn);
        if fa.targets.len() == before {
            return Ok(());
        }
        if use_.rule {
            if fa.targets.is_empty() {
                if use_.standby {
                    return self.delete_rule(&use_.arn).await;
                }
                return Err(OkraError::Conflict(
                    format!(
                        "rule {} forwards only to target group {group_arn}: okra does not \
                         rewrite a rule it does not own; change or delete the rule",
                        use_.arn
                    ),
                    None,
                ));
            }
            self.client
                .modify_rule()
                .rule_arn(&use_.arn)
                .set_actions(Some(replace_forward(&actions, &fa)))
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
        } else {
            self.client
                .modify_listener()
                .listener_arn(&use_.arn)
                .set_default_actions(Some(replace_forward(&actions, &fa)))
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
        }
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> Result<()> {
        match self
            .client
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(OkraError::from_sdk)
        {
            Ok(_) | Err(OkraError::TargetGroupNotFound(..)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn tag_target_group(&self, arn: &str, tags: &[(String, String)]) -> Result<()> {
        self.client
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }

    async fn target_health(&self, arn: &str) -> Result<TargetHealth> {
        let mut h = TargetHealth::default();
        for (_, state, reason) in self.target_states(arn).await? {
            match state {
                Some(TargetHealthStateEnum::Draining) => {}
                // A target in an Availability Zone the load balancer has not enabled is never
                // checked and never gets traffic (ELB API reference, TargetHealth: reason
                // `Target.NotInUse`): it does not count for the gate. (Before its group is in a
                // forward action, every target reads so: the group has none that count.)
                Some(TargetHealthStateEnum::Unused)
                    if reason == Some(TargetHealthReasonEnum::NotInUse) => {}
                Some(TargetHealthStateEnum::Healthy) => {
                    h.healthy += 1;
                    h.total += 1;
                }
                _ => h.total += 1,
            }
        }
        Ok(h)
    }

    async fn registered_targets(&self, arn: &str) -> Result<Vec<String>> {
        Ok(self
            .target_states(arn)
            .await?
            .into_iter()
            .filter(|(id, s, _)| {
                !id.is_empty() && s.as_ref() != Some(&TargetHealthStateEnum::Draining)
            })
            .map(|(id, _, _)| id)
            .collect())
    }

    async fn register_targets(&self, arn: &str, ids: &[String]) -> Result<()> {
        for targets in batches(ids) {
            self.client
                .register_targets()
                .target_group_arn(arn)
                .set_targets(Some(targets))
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
        }
        Ok(())
    }

    async fn deregister_targets(&self, arn: &str, ids: &[String]) -> Result<()> {
        for targets in batches(ids) {
            self.client
                .deregister_targets()
                .target_group_arn(arn)
                .set_targets(Some(targets))
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
        }
        Ok(())
    }
}
