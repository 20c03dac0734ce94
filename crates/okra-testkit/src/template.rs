//! What the local stack reads from template.yaml so that it runs the functions as deployed:
//! each function's `Timeout` (its own, else `Globals.Function.Timeout`, else Lambda's default of
//! 3 s), by the binary `sam build` makes for it (the root Makefile's `build-<LogicalId>: PKG =
//! <package>` lines; binary name = package name).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_yaml_ng::Value;

/// Lambda's default time-out ("Configure Lambda function timeout": 3 seconds).
pub const LAMBDA_DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Each function binary's time-out as template.yaml deploys it.
pub fn function_timeouts(root: &Path) -> anyhow::Result<BTreeMap<String, Duration>> {
    let text = std::fs::read_to_string(root.join("template.yaml")).context("template.yaml")?;
    let makefile = std::fs::read_to_string(root.join("Makefile")).context("Makefile")?;
    timeouts_of(&text, &makefile)
}

fn timeouts_of(template: &str, makefile: &str) -> anyhow::Result<BTreeMap<String, Duration>> {
    let t: Value = serde_yaml_ng::from_str(template).context("template.yaml is not YAML")?;
    let seconds = |v: &Value| v.as_u64().map(Duration::from_secs);
    let global = seconds(&t["Globals"]["Function"]["Timeout"]).unwrap_or(LAMBDA_DEFAULT_TIMEOUT);
    let mut out = BTreeMap::new();
    for line in makefile.lines() {
        let Some((target, package)) = line
            .strip_prefix("build-")
            .and_then(|l| l.split_once(": PKG = "))
        else {
            continue;
        };
        let resource = &t["Resources"][target];
        anyhow::ensure!(
            resource["Type"].as_str() == Some("AWS::Serverless::Function"),
            "Makefile builds {target}, which template.yaml has no function named"
        );
        let timeout = seconds(&resource["Properties"]["Timeout"]).unwrap_or(global);
        out.insert(package.trim().to_owned(), timeout);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_function_s_own_timeout_else_the_global_one() {
        let template = "Globals:\n  Function:\n    Timeout: 60\nResources:\n  A:\n    Type: AWS::Serverless::Function\n    Properties:\n      Timeout: 29\n      Role: !Sub arn:${AWS::Partition}:x\n  B:\n    Type: AWS::Serverless::Function\n    Properties: {}\n";
        let makefile = "build-A: PKG = api\nbuild-B: PKG = shift-weights\nother: x\n";
        let got = timeouts_of(template, makefile).unwrap();
        assert_eq!(got["api"], Duration::from_secs(29));
        assert_eq!(got["shift-weights"], Duration::from_secs(60));
        assert_eq!(got.len(), 2);
        assert!(timeouts_of(template, "build-C: PKG = c\n").is_err());
    }

    #[test]
    fn the_shipped_template() {
        let got = function_timeouts(&crate::workspace_root()).unwrap();
        assert_eq!(got["api"], Duration::from_secs(29));
        assert_eq!(got["dispatcher"], Duration::from_secs(300));
        assert_eq!(got["shift-weights"], Duration::from_secs(60));
        assert_eq!(got.len(), 7, "{got:?}");
    }
}
