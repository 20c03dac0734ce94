//! [`TrailPort`] over aws-sdk-cloudtrail, for `okra doctor`.
//!
//! AWS: CloudTrail API reference — DescribeTrails (`includeShadowTrails`: multi-region trails of
//! other home regions apply here too), GetTrailStatus (`IsLogging`), GetEventSelectors (basic
//! selectors: `IncludeManagementEvents` with `ReadWriteType` `All` or `WriteOnly`; advanced
//! selectors: a `eventCategory = Management` field selector, not limited to `readOnly = true`).

use aws_sdk_cloudtrail as ct;
use ct::types::ReadWriteType;
use okra_core::doctor::TrailFacts;

use crate::error::{OkraError, Result};
use crate::ports::TrailPort;

/// The CloudTrail adapter.
#[derive(Debug, Clone)]
pub struct CloudTrail {
    client: ct::Client,
}

impl CloudTrail {
    /// Wraps a client.
    pub fn new(client: ct::Client) -> Self {
        Self { client }
    }
}

fn takes_write_management_events(
    out: &ct::operation::get_event_selectors::GetEventSelectorsOutput,
) -> bool {
    let basic = out.event_selectors().iter().any(|s| {
        s.include_management_events().unwrap_or(true)
            && matches!(
                s.read_write_type(),
                None | Some(ReadWriteType::All | ReadWriteType::WriteOnly)
            )
    });
    let advanced = out.advanced_event_selectors().iter().any(|s| {
        let fields = s.field_selectors();
        let management = fields
            .iter()
            .any(|f| f.field() == "eventCategory" && f.equals().iter().any(|v| v == "Management"));
        let read_only = fields
            .iter()
            .any(|f| f.field() == "readOnly" && f.equals().iter().any(|v| v == "true"));
        management && !read_only
    });
    basic || advanced
}

impl TrailPort for CloudTrail {
    async fn trails(&self) -> Result<Vec<TrailFacts>> {
        let out = self
            .client
            .describe_trails()
            .include_shadow_trails(true)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        let mut trails = Vec::new();
        for t in out.trail_list() {
            let Some(arn) = t.trail_arn().or(t.name()) else {
                continue;
            };
            let status = self
                .client
                .get_trail_status()
                .name(arn)
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
            let selectors = self
                .client
                .get_event_selectors()
                .trail_name(arn)
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
            trails.push(TrailFacts {
                name: t.name().unwrap_or(arn).to_string(),
                home_region: t.home_region().unwrap_or_default().to_string(),
                multi_region: t.is_multi_region_trail().unwrap_or(false),
                logging: status.is_logging().unwrap_or(false),
                write_management_events: takes_write_management_events(&selectors),
            });
        }
        Ok(trails)
    }
}
