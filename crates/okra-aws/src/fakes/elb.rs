//! ELBv2 in memory: listeners and rules with their actions, target groups with tags and health.

use okra_core::model::{ChainAction, ForwardSlot, forward_slot, other_action, owned_forward};

use super::*;

/// What one action of a listener or rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawKind {
    /// A forward action.
    Forward(ForwardAction),
    /// Any other action, by its ELB type (`fixed-response`, `redirect`, `authenticate-oidc`).
    Other(String),
}

/// One action of a listener or rule, as ELB keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAction {
    /// Its order.
    pub order: Option<i32>,
    /// What it does.
    pub kind: RawKind,
}

impl RawAction {
    /// A forward action.
    pub fn forward(order: i32, fa: ForwardAction) -> Self {
        Self {
            order: Some(order),
            kind: RawKind::Forward(fa),
        }
    }

    /// Another action type.
    pub fn other(order: i32, action_type: &str) -> Self {
        Self {
            order: Some(order),
            kind: RawKind::Other(action_type.to_string()),
        }
    }

    /// ELB's usual default action of a new listener: a fixed 404.
    pub fn fixed_response() -> Self {
        Self::other(1, "fixed-response")
    }
}

/// One target group, as the fake keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeTargetGroup {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its VPC.
    pub vpc_id: String,
    /// The template it was made with (`None` for groups a test added).
    pub template: Option<okra_core::spec::TargetGroupTemplate>,
    /// Its protocol (`None` for groups a test added).
    pub protocol: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its targets' health.
    pub health: TargetHealth,
    /// Its registered targets (ids), when registered through the port.
    pub targets: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub(super) struct ElbState {
    /// (listener, rule) → actions. `None`: the listener's default actions.
    pub(super) actions: BTreeMap<(String, Option<String>), Vec<RawAction>>,
    pub(super) target_groups: BTreeMap<String, FakeTargetGroup>,
    pub(super) next_id: u64,
    /// Writes to drop (report success, change nothing).
    pub(super) drop_writes: usize,
    /// Written by okra (whether applied or not), in order.
    pub(super) writes: Vec<ForwardAction>,
    /// Listener → its load balancer's VPC (default `vpc-1`, the fake clusters' VPC, for any
    /// listener, added or not).
    pub(super) load_balancer_vpcs: BTreeMap<String, String>,
    /// Tags of load balancers, listeners and rules, by ARN (none unless a test sets them).
    pub(super) resource_tags: BTreeMap<String, BTreeMap<String, String>>,
    /// Standby rules: (listener, owner) → (rule ARN, target groups).
    pub(super) standby_rules: BTreeMap<(String, String), (String, Vec<String>)>,
}

/// ELBv2 in memory.
#[derive(Debug, Default)]
pub struct FakeElb {
    state: Mutex<ElbState>,
    /// Counts and faults.
    pub meter: Meter,
}

/// The chain as okra's core reads it: each action's type and order.
fn chain(actions: &[RawAction]) -> Vec<ChainAction<'_>> {
    actions
        .iter()
        .map(|a| ChainAction {
            action_type: match &a.kind {
                RawKind::Forward(_) => "forward",
                RawKind::Other(t) => t,
            },
            order: a.order,
        })
        .collect()
}

/// The action okra owns, read as the ELB adapter reads it (the core's rule).
pub(super) fn current_of(actions: &[RawAction]) -> CurrentAction {
    let chain = chain(actions);
    match owned_forward(&chain).map(|i| &actions[i].kind) {
        Some(RawKind::Forward(fa)) => {
            let mut fa = fa.clone();
            fa.targets.sort();
            CurrentAction::Forward(fa)
        }
        _ => other_action(&chain),
    }
}

/// `read` with the forward written where the ELB adapter writes it (the core's rule).
pub(super) fn replace_forward(read: &[RawAction], fa: &ForwardAction) -> Vec<RawAction> {
    let mut out = read.to_vec();
    match forward_slot(&chain(read)) {
        ForwardSlot::Replace(i) => {
            out[i] = RawAction {
                order: read[i].order,
                kind: RawKind::Forward(fa.clone()),
            };
        }
        ForwardSlot::Append(order) => out.push(RawAction {
            order,
            kind: RawKind::Forward(fa.clone()),
        }),
    }
    out
}

pub(super) fn short_name(arn: &str) -> String {
    okra_core::arn::target_group_name(arn)
        .unwrap_or_default()
        .to_string()
}

impl FakeElb {
    /// No listeners, no target groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a listener with these default actions.
    pub fn add_listener(&self, listener_arn: &str, actions: Vec<RawAction>) -> &Self {
        lock(&self.state)
            .actions
            .insert((listener_arn.to_string(), None), actions);
        self
    }

    /// Puts the listener's load balancer in another VPC than the default `vpc-1`.
    pub fn set_load_balancer_vpc(&self, listener_arn: &str, vpc: &str) -> &Self {
        lock(&self.state)
            .load_balancer_vpcs
            .insert(listener_arn.to_string(), vpc.to_string());
        self
    }

    /// Tags a load balancer, listener or rule (by ARN).
    pub fn tag_resource(&self, arn: &str, key: &str, value: &str) -> &Self {
        lock(&self.state)
            .resource_tags
            .entry(arn.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Adds (or replaces) a rule of a listener with these actions.
    pub fn add_rule(&self, listener_arn: &str, rule_arn: &str, actions: Vec<RawAction>) -> &Self {
        lock(&self.state).actions.insert(
            (listener_arn.to_string(), Some(rule_arn.to_string())),
            actions,
        );
        self
    }

    /// The actions of a listener (rule `None`) or rule.
    pub fn actions(&self, listener_arn: &str, rule_arn: Option<&str>) -> Option<Vec<RawAction>> {
        lock(&self.state)
            .actions
            .get(&(listener_arn.to_string(), rule_arn.map(str::to_string)))
            .cloned()
    }

    /// The forward action of a listener or rule, if it has one.
    pub fn forward(&self, listener_arn: &str, rule_arn: Option<&str>) -> Option<ForwardAction> {
        let actions = self.actions(listener_arn, rule_arn)?;
        match current_of(&actions) {
            CurrentAction::Forward(fa) => Some(fa),
            CurrentAction::Other { .. } => None,
        }
    }

    /// Someone else sets the forward action (through the console, say): the forward is replaced
    /// (or the fixed-response becomes one), the other actions stay. Not counted.
    pub fn set_forward(&self, listener_arn: &str, rule_arn: Option<&str>, fa: ForwardAction) {
        let mut s = lock(&self.state);
        let key = (listener_arn.to_string(), rule_arn.map(str::to_string));
        let actions = s.actions.get(&key).cloned().unwrap_or_default();
        s.actions.insert(key, replace_forward(&actions, &fa));
    }

    /// The target groups of the standby rule of `owner` on the listener, if there is one.
    pub fn standby(&self, listener_arn: &str, owner: &str) -> Option<Vec<String>> {
        lock(&self.state)
            .standby_rules
            .get(&(listener_arn.to_string(), owner.to_string()))
            .map(|(_, g)| g.clone())
    }

    /// Sets a tag on a target group as someone else would (not counted).
    pub fn tag_target_group_now(&self, arn: &str, key: &str, value: &str) {
        if let Some(tg) = lock(&self.state).target_groups.get_mut(arn) {
            tg.tags.insert(key.to_string(), value.to_string());
        }
    }

    /// The next `n` writes report success and change nothing.
    pub fn drop_next_writes(&self, n: usize) {
        lock(&self.state).drop_writes += n;
    }

    /// The forward actions okra wrote, in order (dropped writes included).
    pub fn writes(&self) -> Vec<ForwardAction> {
        lock(&self.state).writes.clone()
    }

    pub(super) fn new_arn(s: &mut ElbState, name: &str) -> String {
        s.next_id += 1;
        format!(
            "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{name}/{:016x}",
            0x5eed_0000_0000_0000_u64 + s.next_id
        )
    }

    /// Adds a target group with these tags (in `vpc-1`, no targets) and returns its ARN.
    pub fn add_target_group(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let mut s = lock(&self.state);
        let arn = Self::new_arn(&mut s, name);
        s.target_groups.insert(
            arn.clone(),
            FakeTargetGroup {
                arn: arn.clone(),
                name: name.to_string(),
                vpc_id: "vpc-1".to_string(),
                template: None,
                protocol: None,
                tags: tags
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect(),
                health: TargetHealth::default(),
                targets: BTreeSet::new(),
            },
        );
        arn
    }

    /// Adds okra's target group of a cluster: the deterministic name and the cell, version and
    /// cluster tags. Returns its ARN.
    pub fn add_okra_group(&self, cell: &str, cluster: &str, version: &str) -> String {
        self.add_target_group(
            &okra_core::naming::target_group_name(cell, cluster),
            &[
                (TAG_CELL, cell),
                (TAG_VERSION, version),
                (TAG_CLUSTER, cluster),
                (okra_core::model::TAG_MANAGED_BY, "okra"),
            ],
        )
    }

    /// Deletes a target group.
    pub fn remove_target_group(&self, arn: &str) {
        lock(&self.state).target_groups.remove(arn);
    }

    /// Sets a target group's health counts.
    pub fn set_health(&self, arn: &str, healthy: u32, total: u32) {
        if let Some(tg) = lock(&self.state).target_groups.get_mut(arn) {
            tg.health = TargetHealth { healthy, total };
        }
    }

    /// A target group by ARN.
    pub fn target_group(&self, arn: &str) -> Option<FakeTargetGroup> {
        lock(&self.state).target_groups.get(arn).cloned()
    }

    /// A target group by name.
    pub fn target_group_named(&self, name: &str) -> Option<FakeTargetGroup> {
        lock(&self.state)
            .target_groups
            .values()
            .find(|t| t.name == name)
            .cloned()
    }

    /// All target groups, by ARN.
    pub fn target_groups(&self) -> Vec<FakeTargetGroup> {
        lock(&self.state).target_groups.values().cloned().collect()
    }

    pub(super) fn not_found(listener_arn: &str, rule_arn: Option<&str>) -> OkraError {
        match rule_arn {
            Some(r) => OkraError::RuleNotFound(format!("One or more rules not found: {r}"), None),
            None => OkraError::ListenerNotFound(
                format!("One or more listeners not found: {listener_arn}"),
                None,
            ),
        }
    }
}

impl LoadBalancerPort for FakeElb {
    type Raw = Vec<RawAction>;

    async fn load_balancer_vpc(&self, listener_arn: &str) -> Result<String> {
        self.meter.enter("load_balancer_vpc")?;
        // Any listener's load balancer is in `vpc-1` unless a test says otherwise (tests of
        // target groups need no listener).
        let st = lock(&self.state);
        Ok(st
            .load_balancer_vpcs
            .get(listener_arn)
            .cloned()
            .unwrap_or_else(|| "vpc-1".to_string()))
    }

    async fn resource_tags(&self, arns: &[String]) -> Result<okra_core::owner::Tagged> {
        self.meter.enter("resource_tags")?;
        let st = lock(&self.state);
        Ok(arns
            .iter()
            .map(|arn| {
                let tags = st
                    .resource_tags
                    .get(arn)
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                (arn.clone(), tags)
            })
            .collect())
    }

    async fn load_balancer(
        &self,
        listener_arn: &str,
    ) -> Result<okra_core::doctor::LoadBalancerFacts> {
        self.meter.enter("load_balancer")?;
        let st = lock(&self.state);
        if !st.actions.keys().any(|(l, _)| l == listener_arn) {
            return Err(OkraError::ListenerNotFound(listener_arn.to_string(), None));
        }
        // The load balancer's groups: those its listener's actions forward to.
        let groups: BTreeSet<&str> = st
            .actions
            .iter()
            .filter(|((l, _), _)| l == listener_arn)
            .flat_map(|(_, actions)| actions)
            .filter_map(|a| match &a.kind {
                RawKind::Forward(fa) => Some(fa),
                _ => None,
            })
            .flat_map(|fa| fa.targets.iter().map(|t| t.target_group_arn.as_str()))
            .collect();
        Ok(okra_core::doctor::LoadBalancerFacts {
            vpc_id: st
                .load_balancer_vpcs
                .get(listener_arn)
                .cloned()
                .unwrap_or_else(|| "vpc-1".to_string()),
            target_groups: groups.len(),
            security_groups: vec![],
            subnets: vec![],
            zones: vec![],
        })
    }

    async fn read_action(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
    ) -> Result<Owned<Vec<RawAction>>> {
        self.meter.enter("read_action")?;
        let actions = self
            .actions(listener_arn, rule_arn)
            .ok_or_else(|| Self::not_found(listener_arn, rule_arn))?;
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
        self.meter.enter("standby_rule")?;
        Ok(lock(&self.state)
            .standby_rules
            .get(&(listener_arn.to_string(), owner.to_string()))
            .cloned())
    }

    async fn put_standby_rule(
        &self,
        listener_arn: &str,
        owner: &str,
        _existing: Option<&str>,
        groups: &[String],
    ) -> Result<()> {
        self.meter.enter("put_standby_rule")?;
        let mut s = lock(&self.state);
        let arn =
            format!("{listener_arn}/standby-{owner}").replace(":listener/", ":listener-rule/");
        s.standby_rules.insert(
            (listener_arn.to_string(), owner.to_string()),
            (arn, groups.to_vec()),
        );
        Ok(())
    }

    async fn delete_rule(&self, rule_arn: &str) -> Result<()> {
        self.meter.enter("delete_rule")?;
        lock(&self.state)
            .standby_rules
            .retain(|_, (arn, _)| arn != rule_arn);
        Ok(())
    }

    async fn write_forward(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
        read: &Vec<RawAction>,
        action: &ForwardAction,
    ) -> Result<()> {
        self.meter.enter("write_forward")?;
        let mut s = lock(&self.state);
        let key = (listener_arn.to_string(), rule_arn.map(str::to_string));
        if !s.actions.contains_key(&key) {
            return Err(Self::not_found(listener_arn, rule_arn));
        }
        // ELB's own checks of a forward action.
        if action.targets.is_empty() {
            return Err(OkraError::Aws {
                code: "ValidationError".into(),
                message: "a forward action needs at least one target group".into(),
                cause: None,
            });
        }
        if action.targets.len() > okra_core::weights::MAX_TARGET_GROUPS_PER_ACTION {
            return Err(OkraError::Aws {
                code: "TooManyTargetGroups".into(),
                message: format!(
                    "{} target groups in one forward action",
                    action.targets.len()
                ),
                cause: None,
            });
        }
        if let Some(t) = action
            .targets
            .iter()
            .find(|t| t.weight > okra_core::weights::MAX_WEIGHT)
        {
            return Err(OkraError::Aws {
                code: "ValidationError".into(),
                message: format!("weight {} of {} is above 999", t.weight, t.target_group_arn),
                cause: None,
            });
        }
        if let Some(t) = action
            .targets
            .iter()
            .find(|t| !s.target_groups.contains_key(&t.target_group_arn))
        {
            return Err(OkraError::TargetGroupNotFound(
                format!(
                    "One or more target groups not found: {}",
                    t.target_group_arn
                ),
                None,
            ));
        }
        s.writes.push(action.clone());
        if s.drop_writes > 0 {
            s.drop_writes -= 1;
            return Ok(());
        }
        // Last writer wins, as on ELB: the write is based on what was read.
        s.actions.insert(key, replace_forward(read, action));
        Ok(())
    }

    async fn find_target_groups(
        &self,
        cell: &str,
        candidate_arns: &[String],
    ) -> Result<Vec<TargetGroup>> {
        self.meter.enter("find_target_groups")?;
        let s = lock(&self.state);
        let tagged: BTreeSet<String> = s
            .target_groups
            .values()
            .filter(|t| t.tags.get(TAG_CELL).map(String::as_str) == Some(cell))
            .map(|t| t.arn.clone())
            .collect();
        let direct: BTreeSet<String> = candidate_arns
            .iter()
            .filter(|a| !tagged.contains(*a))
            .cloned()
            .collect();
        let arns: BTreeSet<String> = tagged.into_iter().chain(direct).collect();
        let mut found: Vec<TargetGroup> = arns
            .iter()
            .filter_map(|arn| s.target_groups.get(arn))
            .filter(|t| t.tags.get(TAG_CELL).map(String::as_str) == Some(cell))
            .map(|t| TargetGroup {
                idle_since: idle_since(&t.tags),
                managed: managed(&t.tags),
                arn: t.arn.clone(),
                name: short_name(&t.arn),
                cluster: t.tags.get(TAG_CLUSTER).cloned().unwrap_or_default(),
                version: t.tags.get(TAG_VERSION).cloned().unwrap_or_default(),
            })
            .collect();
        found.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok(found)
    }

    async fn find_cells_target_groups(
        &self,
        cells: &[String],
    ) -> Result<Vec<(String, TargetGroup)>> {
        self.meter.enter("find_cells_target_groups")?;
        let s = lock(&self.state);
        Ok(s.target_groups
            .values()
            .filter_map(|t| {
                let cell = t.tags.get(TAG_CELL).filter(|c| cells.contains(c))?;
                Some((
                    cell.clone(),
                    TargetGroup {
                        idle_since: idle_since(&t.tags),
                        managed: managed(&t.tags),
                        arn: t.arn.clone(),
                        name: short_name(&t.arn),
                        cluster: t.tags.get(TAG_CLUSTER).cloned().unwrap_or_default(),
                        version: t.tags.get(TAG_VERSION).cloned().unwrap_or_default(),
                    },
                ))
            })
            .collect())
    }

    async fn create_target_group(&self, tg: &NewTargetGroup) -> Result<String> {
        self.meter.enter("create_target_group")?;
        let mut s = lock(&self.state);
        if let Some(existing) = s.target_groups.values().find(|t| t.name == tg.name) {
            // ELB answers a create with identical settings with the existing group.
            if existing.vpc_id != tg.vpc_id {
                return Err(OkraError::Aws {
                    code: "DuplicateTargetGroupName".into(),
                    message: format!("A target group with the same name '{}' exists", tg.name),
                    cause: None,
                });
            }
            return Ok(existing.arn.clone());
        }
        let arn = Self::new_arn(&mut s, &tg.name);
        s.target_groups.insert(
            arn.clone(),
            FakeTargetGroup {
                arn: arn.clone(),
                name: tg.name.clone(),
                vpc_id: tg.vpc_id.clone(),
                template: Some(tg.template.clone()),
                protocol: Some(tg.protocol.clone()),
                tags: tg.tags.iter().cloned().collect(),
                health: TargetHealth::default(),
                targets: BTreeSet::new(),
            },
        );
        Ok(arn)
    }

    async fn target_group_by_name(&self, name: &str) -> Result<Option<String>> {
        self.meter.enter("target_group_by_name")?;
        Ok(self.target_group_named(name).map(|t| t.arn))
    }

    async fn untag_target_group(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.meter.enter("untag_target_group")?;
        let mut s = lock(&self.state);
        let tg = s.target_groups.get_mut(arn).ok_or_else(|| not_found(arn))?;
        for k in keys {
            tg.tags.remove(k);
        }
        Ok(())
    }

    async fn forward_uses(&self, arn: &str) -> Result<Vec<okra_core::retire::ForwardUse>> {
        self.meter.enter("forward_uses")?;
        let s = lock(&self.state);
        let mut uses = Vec::new();
        for ((listener, rule), actions) in &s.actions {
            for a in actions {
                if let RawKind::Forward(fa) = &a.kind
                    && let Some(t) = fa.targets.iter().find(|t| t.target_group_arn == arn)
                {
                    uses.push(okra_core::retire::ForwardUse {
                        arn: rule.clone().unwrap_or_else(|| listener.clone()),
                        rule: rule.is_some(),
                        standby: false,
                        weight: t.weight,
                    });
                }
            }
        }
        for (rule, groups) in s.standby_rules.values() {
            if groups.iter().any(|g| g == arn) {
                uses.push(okra_core::retire::ForwardUse {
                    arn: rule.clone(),
                    rule: true,
                    standby: true,
                    weight: 1,
                });
            }
        }
        Ok(uses)
    }

    async fn remove_forward(
        &self,
        use_: &okra_core::retire::ForwardUse,
        group_arn: &str,
    ) -> Result<()> {
        self.meter.enter("remove_forward")?;
        let mut s = lock(&self.state);
        if use_.standby {
            for (rule, groups) in s.standby_rules.values_mut() {
                if *rule == use_.arn {
                    groups.retain(|g| g != group_arn);
                }
            }
            s.standby_rules.retain(|_, (_, groups)| !groups.is_empty());
            return Ok(());
        }
        for ((listener, rule), actions) in &mut s.actions {
            let here = rule.as_deref().unwrap_or(listener.as_str());
            if here != use_.arn {
                continue;
            }
            for a in actions.iter_mut() {
                if let RawKind::Forward(fa) = &mut a.kind {
                    fa.targets.retain(|t| t.target_group_arn != group_arn);
                }
            }
        }
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> Result<()> {
        self.meter.enter("delete_target_group")?;
        let mut s = lock(&self.state);
        let used = s.actions.values().flatten().any(|a| {
            matches!(&a.kind, RawKind::Forward(fa)
                if fa.targets.iter().any(|t| t.target_group_arn == arn))
        }) || s
            .standby_rules
            .values()
            .any(|(_, groups)| groups.iter().any(|g| g == arn));
        if used {
            return Err(OkraError::from_code(
                "ResourceInUse".into(),
                format!("Target group '{arn}' is currently in use by a listener or a rule"),
            ));
        }
        s.target_groups.remove(arn);
        Ok(())
    }

    async fn tag_target_group(&self, arn: &str, tags: &[(String, String)]) -> Result<()> {
        self.meter.enter("tag_target_group")?;
        let mut s = lock(&self.state);
        let tg = s.target_groups.get_mut(arn).ok_or_else(|| {
            OkraError::TargetGroupNotFound(
                format!("One or more target groups not found: {arn}"),
                None,
            )
        })?;
        tg.tags.extend(tags.iter().cloned());
        Ok(())
    }

    async fn target_health(&self, arn: &str) -> Result<TargetHealth> {
        self.meter.enter("target_health")?;
        self.target_group(arn).map(|t| t.health).ok_or_else(|| {
            OkraError::TargetGroupNotFound(
                format!("One or more target groups not found: {arn}"),
                None,
            )
        })
    }

    async fn registered_targets(&self, arn: &str) -> Result<Vec<String>> {
        self.meter.enter("registered_targets")?;
        self.target_group(arn)
            .map(|t| t.targets.into_iter().collect())
            .ok_or_else(|| not_found(arn))
    }

    async fn register_targets(&self, arn: &str, ids: &[String]) -> Result<()> {
        self.meter.enter("register_targets")?;
        let mut st = lock(&self.state);
        let tg = st
            .target_groups
            .get_mut(arn)
            .ok_or_else(|| not_found(arn))?;
        tg.targets.extend(ids.iter().cloned());
        Ok(())
    }

    async fn deregister_targets(&self, arn: &str, ids: &[String]) -> Result<()> {
        self.meter.enter("deregister_targets")?;
        let mut st = lock(&self.state);
        let tg = st
            .target_groups
            .get_mut(arn)
            .ok_or_else(|| not_found(arn))?;
        for id in ids {
            tg.targets.remove(id);
        }
        Ok(())
    }
}

/// The group's [`okra_core::model::TAG_IDLE_SINCE`], in seconds, as the adapter reads it.
fn idle_since(tags: &BTreeMap<String, String>) -> Option<u64> {
    tags.get(okra_core::model::TAG_IDLE_SINCE)
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

/// Whether okra made it, as the adapter reads it.
fn managed(tags: &BTreeMap<String, String>) -> bool {
    tags.get(okra_core::model::TAG_MANAGED_BY)
        .map(String::as_str)
        == Some(okra_core::model::MANAGED_BY_OKRA)
}

pub(super) fn not_found(arn: &str) -> OkraError {
    OkraError::TargetGroupNotFound(format!("One or more target groups not found: {arn}"), None)
}
