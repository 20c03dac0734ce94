//! [`SecretsPort`] over aws-sdk-secretsmanager.

use aws_sdk_secretsmanager as sm;

use crate::error::{OkraError, Result};
use crate::ports::SecretsPort;

/// The Secrets Manager adapter.
#[derive(Debug, Clone)]
pub struct Secrets {
    client: sm::Client,
}

impl Secrets {
    /// Wraps a client.
    pub fn new(client: sm::Client) -> Self {
        Self { client }
    }
}

impl SecretsPort for Secrets {
    async fn secret_string(&self, id: &str) -> Result<String> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        out.secret_string().map(str::to_string).ok_or_else(|| {
            OkraError::InvalidInput(format!("secret {id}: has no SecretString (binary secret?)"))
        })
    }
}
