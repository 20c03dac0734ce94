//! The CloudWatch adapter against `aws-smithy-mocks`: what it sends and how it reads pages.

use aws_sdk_cloudwatch as cw;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use cw::Client;
use cw::operation::get_metric_data::{GetMetricDataError, GetMetricDataOutput};
use cw::types::{MetricDataResult, ScanBy};
use okra_aws::cloudwatch::CloudWatch;
use okra_aws::ports::{MetricQuery, MetricSeries, MetricsPort};
use okra_core::spec::MetricStat;

fn adapter(rules: &[&Rule]) -> CloudWatch {
    let client = mock_client!(cw, RuleMode::Sequential, rules, |b| b
        .retry_config(RetryConfig::disabled()));
    CloudWatch::new(client)
}

fn queries() -> Vec<MetricQuery> {
    let stat = |name: &str| MetricStat {
        namespace: "AWS/ApplicationELB".into(),
        metric_name: name.into(),
        dimensions: [("LoadBalancer".to_string(), "app/web/1".to_string())].into(),
        period: 60,
        stat: "Sum".into(),
        unit: None,
    };
    vec![
        MetricQuery {
            id: "m0_errors".into(),
            expression: None,
            metric_stat: Some(stat("HTTPCode_Target_5XX_Count")),
            return_data: false,
            label: None,
        },
        MetricQuery {
            id: "m0_requests".into(),
            expression: None,
            metric_stat: Some(stat("RequestCount")),
            return_data: false,
            label: None,
        },
        MetricQuery {
            id: "m0_ratio".into(),
            expression: Some("m0_errors / m0_requests".into()),
            metric_stat: None,
            return_data: true,
            label: Some("ratio".into()),
        },
    ]
}

fn result(id: &str, points: &[(i64, f64)]) -> MetricDataResult {
    MetricDataResult::builder()
        .id(id)
        .set_timestamps(Some(
            points
                .iter()
                .map(|(t, _)| DateTime::from_secs(*t))
                .collect(),
        ))
        .set_values(Some(points.iter().map(|(_, v)| *v).collect()))
        .build()
}

#[tokio::test]
async fn sends_return_data_explicitly_and_merges_pages() {
    let first = mock!(Client::get_metric_data)
        .match_requests(|r| {
            let q = r.metric_data_queries();
            r.next_token().is_none()
                && q.len() == 3
                && q[0].return_data() == Some(false)
                && q[1].return_data() == Some(false)
                && q[2].return_data() == Some(true)
                && q[2].expression() == Some("m0_errors / m0_requests")
                && q[0]
                    .metric_stat()
                    .and_then(|s| s.metric())
                    .and_then(|m| m.metric_name())
                    == Some("HTTPCode_Target_5XX_Count")
                && q[0].metric_stat().and_then(|s| s.period()) == Some(60)
                && r.start_time() == Some(&DateTime::from_secs(1_000))
                && r.end_time() == Some(&DateTime::from_secs(1_300))
                && r.scan_by() == Some(&ScanBy::TimestampAscending)
        })
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(result("m0_ratio", &[(1_120, 0.2), (1_060, 0.1)]))
                .next_token("page-2")
                .build()
        });
    let second = mock!(Client::get_metric_data)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(result("m0_ratio", &[(1_180, 0.3)]))
                .build()
        });
    let cw = adapter(&[&first, &second]);
    let got = cw
        .get_metric_data(&queries(), 1_000, 1_300)
        .await
        .expect("answers");
    assert_eq!(
        got,
        vec![MetricSeries {
            id: "m0_ratio".into(),
            timestamps: vec![1_060, 1_120, 1_180],
            values: vec![0.1, 0.2, 0.3],
        }]
    );
    assert_eq!(first.num_calls(), 1);
    assert_eq!(second.num_calls(), 1);
}

#[tokio::test]
async fn throttling_maps_to_throttled_and_no_query_makes_no_call() {
    let throttled = mock!(Client::get_metric_data).then_error(|| {
        GetMetricDataError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        )
    });
    let cw = adapter(&[&throttled]);
    let err = cw
        .get_metric_data(&queries(), 0, 60)
        .await
        .expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled");
    assert_eq!(
        cw.get_metric_data(&[], 0, 60).await.expect("nothing asked"),
        vec![]
    );
    assert_eq!(throttled.num_calls(), 1);
}
