//! The Datadog adapter against a tiny local HTTP server, and the keys' secrecy.

use std::sync::{Arc, Mutex};

use okra_aws::datadog::Datadog;
use okra_aws::ports::{DatadogPort, SecretsPort};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const API_KEY: &str = "dd-api-0123456789abcdef";
const APP_KEY: &str = "dd-app-fedcba9876543210";

/// Secrets Manager with one JSON secret; counts reads.
#[derive(Debug, Default)]
struct FakeSecrets {
    text: String,
    reads: Arc<Mutex<u32>>,
}

impl SecretsPort for FakeSecrets {
    async fn secret_string(&self, id: &str) -> okra_aws::Result<String> {
        assert_eq!(
            id,
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:datadog"
        );
        *self.reads.lock().expect("lock") += 1;
        Ok(self.text.clone())
    }
}

fn secrets() -> FakeSecrets {
    FakeSecrets {
        text: format!(r#"{{"apiKey": "{API_KEY}", "appKey": "{APP_KEY}"}}"#),
        ..Default::default()
    }
}

const SECRET: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:datadog";

/// Serves `status` and `body` to every request on 127.0.0.1; returns the site and the request
/// heads received.
async fn server(status: &'static str, body: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0_u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            seen.lock()
                .expect("lock")
                .push(String::from_utf8_lossy(&buf).to_string());
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    (format!("http://{addr}"), heads)
}

const ANSWER: &str = r#"{"status":"ok","res_type":"time_series","series":[{"metric":"trace.http.request.duration","pointlist":[[1767268680000.0,0.21],[1767268740000.0,null],[1767268800000.0,0.19]],"scope":"service:web"}],"from_date":1767268500000,"to_date":1767268800000}"#;

#[tokio::test]
async fn queries_with_the_keys_and_reads_the_pointlist() {
    let (site, heads) = server("200 OK", ANSWER).await;
    let secrets = secrets();
    let reads = secrets.reads.clone();
    let dd = Datadog::new(secrets, Some(SECRET.into()), site);
    let points = dd
        .query(
            "avg:trace.http.request.duration{service:web}",
            1_767_268_500,
            1_767_268_800,
        )
        .await
        .expect("answers");
    assert_eq!(points, vec![(1_767_268_680, 0.21), (1_767_268_800, 0.19)]);
    // Twice: the keys are read from Secrets Manager once.
    dd.query("avg:x{*}", 1, 2).await.expect("answers again");

    let heads = heads.lock().expect("lock").clone();
    assert_eq!(heads.len(), 2);
    let head = heads[0].to_ascii_lowercase();
    assert!(
        head.starts_with(
            "get /api/v1/query?from=1767268500&to=1767268800&query=avg%3atrace.http.request.duration%7bservice%3aweb%7d "
        ),
        "{head}"
    );
    assert!(
        head.contains(&format!("dd-api-key: {}", API_KEY.to_ascii_lowercase())),
        "{head}"
    );
    assert!(
        head.contains(&format!(
            "dd-application-key: {}",
            APP_KEY.to_ascii_lowercase()
        )),
        "{head}"
    );
    assert_eq!(*reads.lock().expect("lock"), 1, "the keys are read once");
    assert!(format!("{dd:?}").contains("keys_loaded: true"));
}

#[tokio::test]
async fn the_keys_never_show_in_debug() {
    let (site, _) = server("200 OK", ANSWER).await;
    let dd = Datadog::new(secrets(), Some(SECRET.into()), site);
    dd.query("avg:x{*}", 1, 2).await.expect("answers");
    let debug = format!("{dd:?} {dd:#?}");
    assert!(!debug.contains(API_KEY), "{debug}");
    assert!(!debug.contains(APP_KEY), "{debug}");
    assert!(debug.contains("keys_loaded: true"), "{debug}");
}

#[tokio::test]
async fn http_errors_map_to_okra_errors() {
    let (site, _) = server(
        "429 Too Many Requests",
        r#"{"errors":["Rate limit exceeded"]}"#,
    )
    .await;
    let dd = Datadog::new(secrets(), Some(SECRET.into()), site);
    let err = dd.query("avg:x{*}", 1, 2).await.expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled");
    assert!(!err.to_string().contains(API_KEY));

    let (site, _) = server("403 Forbidden", r#"{"errors":["Forbidden"]}"#).await;
    let dd = Datadog::new(secrets(), Some(SECRET.into()), site);
    assert_eq!(
        dd.query("q", 1, 2).await.expect_err("denied").error_type(),
        "AccessDenied"
    );

    let (site, _) = server(
        "200 OK",
        r#"{"status":"error","error":"Error parsing query"}"#,
    )
    .await;
    let dd = Datadog::new(secrets(), Some(SECRET.into()), site);
    let err = dd.query("q", 1, 2).await.expect_err("bad query");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("Error parsing query"), "{err}");

    // Nobody listening: unavailable, transient.
    let dd = Datadog::new(secrets(), Some(SECRET.into()), "http://127.0.0.1:9");
    assert!(
        dd.query("q", 1, 2)
            .await
            .expect_err("no server")
            .is_transient()
    );
}

#[tokio::test]
async fn missing_or_malformed_secrets_are_reported_without_their_text() {
    let dd = Datadog::new(secrets(), None, "http://127.0.0.1:9");
    let err = dd.query("q", 1, 2).await.expect_err("no secret");
    assert_eq!(err.error_type(), "InvalidInput");
    assert!(err.to_string().contains("DATADOG_SECRET_ARN"), "{err}");

    let bad = FakeSecrets {
        text: format!("apiKey={API_KEY}"),
        ..Default::default()
    };
    let dd = Datadog::new(bad, Some(SECRET.into()), "http://127.0.0.1:9");
    let err = dd.query("q", 1, 2).await.expect_err("bad secret");
    assert!(!err.to_string().contains(API_KEY), "{err}");
}
