//! Finding resources by tag: the Resource Groups Tagging API (`tag:GetResources`).
//!
//! Discovery asks for "the EKS clusters tagged like the cell's selector" and "the target groups
//! tagged with the cell": one paginated query each, whatever the account holds, instead of
//! listing and describing every cluster and target group of the region. The EKS and ELB
//! adapters ([`crate::eks::Eks`], [`crate::elb::Elb`]) hold one of these for their own resource
//! type; the port stays "EKS (or ELB) as okra needs it".
//!
//! AWS: Resource Groups Tagging API reference, GetResources — `ResourceTypeFilters`
//! (`service:resourceType`), `TagFilters` (AND across filters, OR across one filter's values),
//! `ResourcesPerPage` at most 100, `PaginationToken` until it is empty. The API is eventually
//! consistent: a resource tagged a moment ago can be missing from the answer (callers that know a
//! resource by name read it directly as well, see [`crate::handlers::discover`]).

use std::collections::BTreeMap;

use aws_sdk_resourcegroupstagging as tagging;
use tagging::types::TagFilter;

use crate::error::{OkraError, Result};

/// GetResources returns at most this many resources per page.
pub const RESOURCES_PER_PAGE: i32 = 100;
/// A GetResources tag filter takes at most this many values.
pub const VALUES_PER_FILTER: usize = 20;

/// The resource type of EKS clusters.
pub const EKS_CLUSTER: &str = "eks:cluster";
/// The resource type of ELB target groups.
pub const TARGET_GROUP: &str = "elasticloadbalancing:targetgroup";

/// A resource as the tagging API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// Its ARN.
    pub arn: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// The tagging API's adapter.
#[derive(Debug, Clone)]
pub struct Tagging {
    client: tagging::Client,
}

impl Tagging {
    /// Wraps a client.
    pub fn new(client: tagging::Client) -> Self {
        Self { client }
    }

    /// The resources of `resource_type` carrying every one of `tags` (every page).
    pub async fn find(
        &self,
        resource_type: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<Tagged>> {
        let filters: Vec<TagFilter> = tags
            .iter()
            .map(|(k, v)| TagFilter::builder().key(k).values(v).build())
            .collect();
        self.query(resource_type, filters).await
    }

    /// The resources of `resource_type` whose tag `key` has any of `values`: one query per 20
    /// values (every page).
    pub async fn find_any(
        &self,
        resource_type: &str,
        key: &str,
        values: &[String],
    ) -> Result<Vec<Tagged>> {
        let mut found = Vec::new();
        for chunk in values.chunks(VALUES_PER_FILTER) {
            let filter = TagFilter::builder()
                .key(key)
                .set_values(Some(chunk.to_vec()))
                .build();
            found.extend(self.query(resource_type, vec![filter]).await?);
        }
        found.sort_by(|a, b| a.arn.cmp(&b.arn));
        found.dedup_by(|a, b| a.arn == b.arn);
        Ok(found)
    }

    async fn query(&self, resource_type: &str, filters: Vec<TagFilter>) -> Result<Vec<Tagged>> {
        let mut pages = self
            .client
            .get_resources()
            .resource_type_filters(resource_type)
            .set_tag_filters((!filters.is_empty()).then_some(filters))
            .resources_per_page(RESOURCES_PER_PAGE)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(OkraError::from_sdk)?;
            for m in page.resource_tag_mapping_list() {
                let Some(arn) = m.resource_arn() else {
                    continue;
                };
                found.push(Tagged {
                    arn: arn.to_string(),
                    tags: m
                        .tags()
                        .iter()
                        .map(|t| (t.key().to_string(), t.value().to_string()))
                        .collect(),
                });
            }
        }
        found.sort_by(|a, b| a.arn.cmp(&b.arn));
        found.dedup_by(|a, b| a.arn == b.arn);
        Ok(found)
    }
}
