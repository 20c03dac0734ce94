//! [`InvokePort`] over aws-sdk-lambda: a user's check function, invoked synchronously.

use aws_sdk_lambda as lambda;
use aws_smithy_types::Blob;

use crate::error::{OkraError, Result};
use crate::ports::{InvokePort, Invoked};

/// The Lambda adapter.
#[derive(Debug, Clone)]
pub struct Lambda {
    client: lambda::Client,
}

impl Lambda {
    /// Wraps a client.
    pub fn new(client: lambda::Client) -> Self {
        Self { client }
    }
}

impl InvokePort for Lambda {
    async fn invoke(&self, function: &str, payload: &serde_json::Value) -> Result<Invoked> {
        let out = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(lambda::types::InvocationType::RequestResponse)
            .payload(Blob::new(serde_json::to_vec(payload).unwrap_or_default()))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(Invoked {
            function_error: out.function_error().map(str::to_string),
            payload: out
                .payload()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
        })
    }
}
