//! A Datadog-shaped API on 127.0.0.1 and the Datadog keys' secret in moto, for the suites whose
//! analyses read Datadog (check-metrics' `DATADOG_SECRET_ARN` and `DATADOG_SITE`).

use std::io::{Read as _, Write as _};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use okra_testkit::LocalAws;
use serde_json::json;

pub const DD_API_KEY: &str = "dd-api-5ecre7-0kra-e2e-7e57-key";
pub const DD_APP_KEY: &str = "dd-app-5ecre7-0kra-e2e-7e57-app";
pub const DD_SECRET: &str = "okra-e2e-datadog";
/// The request heads the Datadog-shaped API received.
pub static DD_HEADS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The template's `DatadogSecretArn` for the secret: its ARN, whose last six characters moto
/// chooses when the secret is made (IAM's `-??????` pattern).
pub fn secret_arn_pattern() -> String {
    format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{DD_SECRET}-??????")
}

/// A Datadog-shaped `GET /api/v1/query` on 127.0.0.1: one point a minute ago, value 0.2.
/// Serves at most 10 000 connections; records the request heads.
pub fn datadog_site() -> String {
    static SITE: OnceLock<String> = OnceLock::new();
    SITE.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(10_000) {
                let Ok(mut s) = stream else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0_u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65_536 {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                DD_HEADS
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let body = format!(
                    r#"{{"status":"ok","res_type":"time_series","series":[{{"metric":"m","pointlist":[[{}.0,0.2]],"scope":"*"}}]}}"#,
                    (now - 60) * 1000
                );
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        format!("http://{addr}")
    })
    .clone()
}

/// Creates the Datadog keys' secret in moto (again: already there is fine).
pub async fn create_dd_secret(local: &LocalAws) -> Result<()> {
    let sm = aws_sdk_secretsmanager::Client::new(&local.sdk_config().await);
    let made = sm
        .create_secret()
        .name(DD_SECRET)
        .secret_string(json!({"apiKey": DD_API_KEY, "appKey": DD_APP_KEY}).to_string())
        .send()
        .await;
    match made {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
