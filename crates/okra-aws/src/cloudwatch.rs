//! [`MetricsPort`] over aws-sdk-cloudwatch.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch as cw;
use aws_smithy_types::DateTime;
use cw::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StandardUnit};

use crate::error::{OkraError, Result};
use crate::ports::{MAX_METRIC_QUERIES, MetricQuery, MetricSeries, MetricsPort};
use okra_core::doctor::MetricLookup;

/// The CloudWatch adapter.
#[derive(Debug, Clone)]
pub struct CloudWatch {
    client: cw::Client,
}

impl CloudWatch {
    /// Wraps a client.
    pub fn new(client: cw::Client) -> Self {
        Self { client }
    }
}

/// A query in the SDK's shape. `ReturnData` is always sent: AWS takes an omitted one as true.
pub fn to_sdk_query(q: &MetricQuery) -> MetricDataQuery {
    let mut b = MetricDataQuery::builder()
        .id(&q.id)
        .return_data(q.return_data)
        .set_label(q.label.clone())
        .set_expression(q.expression.clone());
    if let Some(ms) = &q.metric_stat {
        let metric = Metric::builder()
            .namespace(&ms.namespace)
            .metric_name(&ms.metric_name)
            .set_dimensions(Some(
                ms.dimensions
                    .iter()
                    .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                    .collect(),
            ))
            .build();
        let stat = MetricStat::builder()
            .metric(metric)
            .period(i32::try_from(ms.period).unwrap_or(i32::MAX))
            .stat(&ms.stat)
            .set_unit(ms.unit.as_deref().map(StandardUnit::from))
            .build();
        b = b.metric_stat(stat);
    }
    b.build()
}

impl MetricsPort for CloudWatch {
    async fn metric_exists(&self, lookup: &MetricLookup) -> Result<bool> {
        let filters: Vec<cw::types::DimensionFilter> = lookup
            .dimensions
            .iter()
            .map(|(k, v)| {
                cw::types::DimensionFilter::builder()
                    .name(k)
                    .value(v)
                    .build()
            })
            .collect();
        let out = self
            .client
            .list_metrics()
            .namespace(&lookup.namespace)
            .metric_name(&lookup.metric_name)
            .set_dimensions(Some(filters))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        // ListMetrics matches metrics with at least these dimensions: exactly these is the one
        // a MetricStat reads.
        Ok(out.metrics().iter().any(|m| {
            m.dimensions().len() == lookup.dimensions.len()
                && m.dimensions().iter().all(|d| {
                    d.name()
                        .and_then(|n| lookup.dimensions.get(n))
                        .is_some_and(|v| Some(v.as_str()) == d.value())
                })
        }))
    }

    async fn get_metric_data(
        &self,
        queries: &[MetricQuery],
        start: i64,
        end: i64,
    ) -> Result<Vec<MetricSeries>> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        if queries.len() > MAX_METRIC_QUERIES {
            return Err(OkraError::InvalidInput(format!(
                "{} metric queries in one sample; GetMetricData takes at most {MAX_METRIC_QUERIES}",
                queries.len()
            )));
        }
        let sdk_queries: Vec<MetricDataQuery> = queries.iter().map(to_sdk_query).collect();
        // Pages may split one query's datapoints: merge them by id, in query order.
        let mut by_id: BTreeMap<String, MetricSeries> = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(sdk_queries.clone()))
                .start_time(DateTime::from_secs(start))
                .end_time(DateTime::from_secs(end))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
            for r in out.metric_data_results() {
                let Some(id) = r.id() else { continue };
                let s = by_id.entry(id.to_string()).or_insert_with(|| MetricSeries {
                    id: id.to_string(),
                    ..Default::default()
                });
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    s.timestamps.push(t.secs());
                    s.values.push(*v);
                }
                for m in r.messages() {
                    tracing::warn!(query = id, code = ?m.code(), message = ?m.value(), "GetMetricData message");
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        let mut series: Vec<MetricSeries> =
            queries.iter().filter_map(|q| by_id.remove(&q.id)).collect();
        for s in &mut series {
            sort_by_time(s);
        }
        Ok(series)
    }
}

/// Sorts a series oldest first (pages or a descending scan may mix the order).
fn sort_by_time(s: &mut MetricSeries) {
    let mut points: Vec<(i64, f64)> = s
        .timestamps
        .iter()
        .copied()
        .zip(s.values.iter().copied())
        .collect();
    points.sort_by_key(|(t, _)| *t);
    s.timestamps = points.iter().map(|(t, _)| *t).collect();
    s.values = points.iter().map(|(_, v)| *v).collect();
}
