//! Which emulator serves the AWS APIs of a local stack: okra's strict moto (always, in `make
//! test`), or fakecloud for the cross-check (`OKRA_EMULATOR=fakecloud`, `make fakecloud-check`;
//! docs/local-aws.md, "A second emulator").

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;

/// The emulator behind [`crate::LocalAws::endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulator {
    /// moto 5.2.5 with okra's strictness patches (`tools/local-aws/strict_moto.py`).
    StrictMoto,
    /// fakecloud (crates.io), installed by `make fakecloud` into `.tools/fakecloud/`.
    Fakecloud,
}

impl Emulator {
    /// `$OKRA_EMULATOR`: unset, empty or `moto` is the strict moto; `fakecloud` is fakecloud.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("OKRA_EMULATOR").unwrap_or_default().as_str() {
            "" | "moto" => Ok(Self::StrictMoto),
            "fakecloud" => Ok(Self::Fakecloud),
            other => bail!("OKRA_EMULATOR={other}: expected `moto` or `fakecloud`"),
        }
    }

    /// Its name in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::StrictMoto => "moto",
            Self::Fakecloud => "fakecloud",
        }
    }

    /// The path that answers 200 once the emulator serves requests.
    pub(crate) fn health_path(self) -> &'static str {
        match self {
            Self::StrictMoto => "/moto-api/",
            // The socket opens before the services are set up: poll this, not the port.
            Self::Fakecloud => "/_fakecloud/health",
        }
    }

    /// fakecloud's binary under the workspace root.
    pub(crate) fn fakecloud_binary(root: &Path) -> PathBuf {
        root.join(".tools/fakecloud/bin/fakecloud")
    }

    /// fakecloud on `127.0.0.1:port`, its in-memory state, no container runtime (its EC2 and
    /// Lambda would want Docker; okra's functions run under cargo lambda watch).
    pub(crate) fn fakecloud_command(root: &Path, port: u16) -> anyhow::Result<Command> {
        let bin = Self::fakecloud_binary(root);
        if !bin.exists() {
            bail!(
                "okra-testkit: {} missing: run `make fakecloud` once (cargo install, 30-55 min)",
                bin.display()
            );
        }
        let mut cmd = Command::new(bin);
        cmd.args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--log-level", "warn"])
            .env("FAKECLOUD_CONTAINER_CLI", "/nonexistent/okra-no-containers");
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_health_paths() {
        assert_eq!(Emulator::StrictMoto.health_path(), "/moto-api/");
        assert_eq!(Emulator::Fakecloud.name(), "fakecloud");
    }
}
