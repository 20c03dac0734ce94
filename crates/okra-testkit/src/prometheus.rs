//! A real Prometheus server (Debian's `prometheus` package, `make prometheus` installs it) on
//! 127.0.0.1, scraping the tests' backends every second with the labels a test gives each
//! target. Started with a configuration written for the test, stopped by its PID when dropped.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Where Debian installs the server (`PROMETHEUS` overrides it).
pub const DEFAULT_BINARY: &str = "/usr/bin/prometheus";

/// One scrape target: `127.0.0.1:PORT` and its labels (such as `version`, `cluster`).
#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    /// `HOST:PORT`.
    pub address: String,
    /// Labels every series of the target gets.
    pub labels: BTreeMap<String, String>,
}

/// A running Prometheus server.
#[derive(Debug)]
pub struct Prometheus {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Prometheus {
    /// Starts a server scraping `targets` every second; waits until it is ready.
    pub fn start(targets: &[ScrapeTarget]) -> anyhow::Result<Self> {
        let binary = std::env::var("PROMETHEUS").unwrap_or_else(|_| DEFAULT_BINARY.to_string());
        anyhow::ensure!(
            std::path::Path::new(&binary).exists(),
            "{binary} is missing: `make prometheus` installs Debian's prometheus package"
        );
        let dir = tempfile::tempdir()?;
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: backends\n    static_configs:\n",
        );
        for t in targets {
            config.push_str(&format!("      - targets: [\"{}\"]\n", t.address));
            if !t.labels.is_empty() {
                config.push_str("        labels:\n");
                for (k, v) in &t.labels {
                    config.push_str(&format!("          {k}: \"{v}\"\n"));
                }
            }
        }
        let config_path: PathBuf = dir.path().join("prometheus.yml");
        std::fs::File::create(&config_path)?.write_all(config.as_bytes())?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let mut p = Self {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if ureq::get(&format!("{}/-/ready", p.url())).call().is_ok() {
                return Ok(p);
            }
            if let Some(c) = p.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                let log = std::fs::read_to_string(p.dir.path().join("prometheus.log"))
                    .unwrap_or_default();
                bail!("prometheus exited ({status}): {log}");
            }
            anyhow::ensure!(Instant::now() < deadline, "prometheus not ready in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The number an instant query answers now (`None`: no data yet).
    pub fn value(&self, query: &str) -> anyhow::Result<Option<f64>> {
        let body: serde_json::Value = ureq::get(&format!("{}/api/v1/query", self.url()))
            .query("query", query)
            .call()?
            .body_mut()
            .read_json()?;
        Ok(body["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok()))
    }

    /// Waits (30 s at most) until `query` answers a number.
    pub fn wait_for(&self, query: &str) -> anyhow::Result<f64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = self.value(query)? {
                return Ok(v);
            }
            anyhow::ensure!(Instant::now() < deadline, "no data for {query} in 30 s");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Stops the server (a query then finds nothing listening).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}
