//! Answers: the JSON bodies, errors and their statuses.

use super::*;

/// An error's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// `InvalidInput`, `InvalidSpec`, `NotFound`, `MethodNotAllowed`, `Conflict`,
    /// `PayloadTooLarge`, `UnsupportedMediaType`, or an [`OkraError::error_type`].
    pub error: String,
    /// What went wrong, in words.
    pub message: String,
    /// The request part at fault: `path.cell`, `path.id`, `query.limit`, `body`,
    /// `header.if-match`, `header.content-type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A spec's errors, by the spec's field path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// `POST .../rollouts` that started nothing: the dispatcher's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<DispatchOutcome>,
    /// The execution concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

/// An answer before it becomes the proxy response.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Option<String>,
    pub(super) headers: Vec<(HeaderName, String)>,
}

pub(super) type Answer = std::result::Result<Reply, Reply>;

impl Reply {
    pub(super) fn json(status: u16, body: &impl Serialize) -> Self {
        match serde_json::to_string(body) {
            Ok(b) => Self {
                status,
                body: Some(b),
                headers: Vec::new(),
            },
            Err(e) => Self::error(
                500,
                "InternalError",
                format!("the answer does not serialize: {e}"),
            ),
        }
    }

    pub(super) fn empty(status: u16) -> Self {
        Self {
            status,
            body: None,
            headers: Vec::new(),
        }
    }

    pub(super) fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn err(status: u16, mut body: ErrorBody) -> Self {
        for e in &mut body.errors {
            e.message = cut(std::mem::take(&mut e.message));
        }
        Self::json(status, &body)
    }

    pub(super) fn error(status: u16, error: &str, message: impl Into<String>) -> Self {
        Self::err(status, error_body(error, message))
    }

    pub(super) fn bad(field: &str, message: impl std::fmt::Display) -> Self {
        Self::err(
            400,
            ErrorBody {
                field: Some(field.to_string()),
                ..error_body("InvalidInput", format!("{field}: {message}"))
            },
        )
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::error(404, "NotFound", message)
    }

    pub(super) fn conflict(message: impl Into<String>) -> Self {
        Self::error(409, "Conflict", message)
    }

    pub(super) fn into_response(self) -> ApiGatewayProxyResponse {
        let mut r = ApiGatewayProxyResponse::default();
        r.status_code = i64::from(self.status);
        r.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers.insert(name, v);
            }
        }
        r.body = self.body.map(Body::Text);
        r
    }
}

/// The longest message of an answer, in characters: a message may quote the request, and the
/// request may be large.
pub const MAX_MESSAGE: usize = 2000;

/// A message cut to [`MAX_MESSAGE`] characters.
pub(super) fn cut(message: String) -> String {
    if message.chars().count() <= MAX_MESSAGE {
        return message;
    }
    let mut m: String = message.chars().take(MAX_MESSAGE).collect();
    m.push_str("...");
    m
}

pub(super) fn error_body(error: &str, message: impl Into<String>) -> ErrorBody {
    ErrorBody {
        error: error.to_string(),
        message: cut(message.into()),
        field: None,
        errors: Vec::new(),
        outcome: None,
        execution: None,
    }
}

/// The HTTP status of an [`OkraError::error_type`].
pub fn status_of(error_type: &str) -> u16 {
    use crate::error::ErrorType as E;
    match error_type.parse::<E>() {
        Ok(E::InvalidInput | E::InvalidSpec) => 400,
        Ok(E::AccessDenied) => 403,
        Ok(E::NotFound) => 404,
        Ok(E::Conflict) => 409,
        Ok(E::Throttled) => 429,
        Ok(E::AwsUnavailable) => 503,
        _ => 502,
    }
}

impl From<OkraError> for Reply {
    fn from(e: OkraError) -> Self {
        Self::error(status_of(e.error_type()), e.error_type(), e.to_string())
    }
}

impl From<AppError> for Reply {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(m) => Self::not_found(m),
            AppError::Conflict(m) => Self::conflict(m),
            AppError::NotStarted(r) => {
                let error_type = AppError::NotStarted(r.clone()).error_type().to_string();
                Self::err(
                    status_of(&error_type),
                    ErrorBody {
                        outcome: Some(r.outcome),
                        execution: (r.outcome == DispatchOutcome::Skipped)
                            .then(|| r.execution.clone())
                            .flatten(),
                        ..error_body(&error_type, r.reason.clone())
                    },
                )
            }
            AppError::Okra(e) => e.into(),
        }
    }
}

pub(super) fn route_error(e: RouteError) -> Reply {
    match e {
        RouteError::NotFound => Reply::not_found("no such resource"),
        RouteError::MethodNotAllowed { allow } => Reply::error(
            405,
            "MethodNotAllowed",
            format!("this resource takes {}", allow.join(", ")),
        )
        .with_header(ALLOW, allow.join(", ")),
        RouteError::BadParam { field, message } => Reply::bad(field, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(status_of("InvalidSpec"), 400);
        assert_eq!(status_of("InvalidInput"), 400);
        assert_eq!(status_of("NotFound"), 404);
        assert_eq!(status_of("Conflict"), 409);
        assert_eq!(status_of("Throttled"), 429);
        assert_eq!(status_of("AwsUnavailable"), 503);
        assert_eq!(status_of("AccessDenied"), 403);
        assert_eq!(status_of("DriftDetected"), 502);
        assert_eq!(status_of("AwsError"), 502);
    }
}
