//! Reading the request: headers, body, format, `If-Match`, `?limit=`, the spec, labels.

use super::*;

/// A header's value (the single-value map first, then the multi-value one).
pub(super) fn header(req: &ApiGatewayProxyRequest, name: &str) -> Option<String> {
    req.headers
        .get(name)
        .or_else(|| req.multi_value_headers.get(name))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The body's size in bytes (after base64 decoding; estimated from the text, without decoding).
pub(super) fn body_size(req: &ApiGatewayProxyRequest) -> usize {
    let Some(body) = req.body.as_deref() else {
        return 0;
    };
    if req.is_base64_encoded {
        let b = body.trim();
        // Four characters of base64 make three bytes; `=` pads.
        (b.len() / 4 * 3).saturating_sub(b.bytes().rev().take_while(|c| *c == b'=').count())
    } else {
        body.len()
    }
}

/// 413 for a body over [`MAX_BODY_BYTES`], whatever the route.
pub(super) fn too_large(req: &ApiGatewayProxyRequest) -> Option<Reply> {
    (body_size(req) > MAX_BODY_BYTES).then(|| {
        Reply::err(
            413,
            ErrorBody {
                field: Some("body".into()),
                ..error_body(
                    "PayloadTooLarge",
                    format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                )
            },
        )
    })
}

/// The body's bytes, base64-decoded when API Gateway encoded them (empty: no body).
pub(super) fn body_bytes(req: &ApiGatewayProxyRequest) -> std::result::Result<Vec<u8>, Reply> {
    if let Some(r) = too_large(req) {
        return Err(r);
    }
    match req.body.as_deref() {
        None => Ok(Vec::new()),
        Some(body) if req.is_base64_encoded => aws_smithy_types::base64::decode(body.trim())
            .map_err(|e| Reply::bad("body", format!("not valid base64: {e}"))),
        Some(body) => Ok(body.as_bytes().to_vec()),
    }
}

/// How a spec body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Yaml,
}

pub(super) fn format_of(req: &ApiGatewayProxyRequest) -> std::result::Result<Format, Reply> {
    let Some(ct) = header(req, "content-type") else {
        return Ok(Format::Json);
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "" | "application/json" | "text/json" => Ok(Format::Json),
        m if m.starts_with("application/") && m.ends_with("+json") => Ok(Format::Json),
        "application/yaml" | "text/yaml" | "application/x-yaml" | "text/x-yaml" => Ok(Format::Yaml),
        other => Err(Reply::err(
            415,
            ErrorBody {
                field: Some("header.content-type".into()),
                ..error_body(
                    "UnsupportedMediaType",
                    format!(
                        "header.content-type: {} is neither JSON (application/json) nor YAML \
                         (application/yaml, text/yaml)",
                        shown(other)
                    ),
                )
            },
        )),
    }
}

/// `If-Match`: a revision (`3`, `"3"` or `W/"3"`).
pub(super) fn if_match(req: &ApiGatewayProxyRequest) -> std::result::Result<Option<u64>, Reply> {
    let Some(v) = header(req, "if-match") else {
        return Ok(None);
    };
    let t = v.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    let t = t
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t);
    if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reply::bad(
            "header.if-match",
            format!("{} is not a revision number", shown(&v)),
        ));
    }
    t.parse::<u64>()
        .map(Some)
        .map_err(|e| Reply::bad("header.if-match", e))
}

/// `?limit=`.
pub(super) fn limit(req: &ApiGatewayProxyRequest) -> std::result::Result<usize, Reply> {
    match req.query_string_parameters.first("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                Reply::bad(
                    "query.limit",
                    format!("{} is not a number in 1..={MAX_LIMIT}", shown(s)),
                )
            }),
    }
}

/// Splits a serde message `path: message` (serde names a path below the root) and completes the
/// path of a missing or unknown field.
pub(super) fn parse_error_path(msg: &str) -> (String, String) {
    let (path, rest) = match msg.split_once(": ") {
        Some((p, r)) if !p.is_empty() && !p.contains(char::is_whitespace) && !p.contains('`') => {
            (p.to_string(), r.to_string())
        }
        _ => (String::new(), msg.to_string()),
    };
    let named = |prefix: &str| {
        rest.strip_prefix(prefix)
            .and_then(|r| r.split('`').next())
            .map(str::to_string)
    };
    let path = match named("missing field `").or_else(|| named("unknown field `")) {
        Some(f) if path.is_empty() || path == "." => f,
        Some(f) if path.ends_with(&format!(".{f}")) || path == f => path,
        Some(f) => format!("{path}.{f}"),
        None if path.is_empty() || path == "." => "body".to_string(),
        None => path,
    };
    (path, rest)
}

pub(super) fn unreadable_spec(e: &ParseError) -> Reply {
    let msg = e.to_string();
    let (path, message) = parse_error_path(&msg);
    Reply::err(
        400,
        ErrorBody {
            field: Some("body".into()),
            errors: vec![FieldError { path, message }],
            ..error_body("InvalidSpec", format!("the body is not a cell spec: {msg}"))
        },
    )
}

pub(super) fn invalid_spec(errors: Vec<FieldError>) -> Reply {
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    Reply::err(
        400,
        ErrorBody {
            field: Some("body".into()),
            errors,
            ..error_body(
                "InvalidSpec",
                format!("the cell spec is invalid:\n{message}"),
            )
        },
    )
}

/// Reads and validates the spec of `PUT /cells/{cell}`, whose `name` must be `cell`.
pub(super) fn read_spec(
    req: &ApiGatewayProxyRequest,
    cell: &str,
) -> std::result::Result<Cell, Reply> {
    let format = format_of(req)?;
    let bytes = body_bytes(req)?;
    let text =
        std::str::from_utf8(&bytes).map_err(|e| Reply::bad("body", format!("not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Err(Reply::bad("body", "missing: send the cell spec"));
    }
    // Either format is read into one document (a JSON body as JSON, so that its syntax errors
    // carry JSON's line and column), then checked whole: every error at once.
    let doc = match format {
        Format::Json if !text.trim_start().starts_with('{') => {
            return Err(Reply::bad("body", "not JSON: a cell spec is a JSON object"));
        }
        Format::Json | Format::Yaml => read_document(text).map_err(|p| unreadable_spec(&p))?,
    };
    let name = doc.get("name").and_then(Value::as_str).map(str::to_string);
    let (spec, mut errors) = match check_document(&doc) {
        Ok(spec) => (Some(spec), Vec::new()),
        Err(e) => (None, e.errors),
    };
    if name.as_deref() != Some(cell) {
        errors.push(FieldError {
            path: "name".into(),
            message: format!(
                "{} must equal the cell of the path, {cell:?}",
                shown(name.as_deref().unwrap_or_default())
            ),
        });
    }
    match spec {
        Some(spec) if errors.is_empty() => Ok(spec),
        _ => Err(invalid_spec(errors)),
    }
}

/// The path routed: the request's `path` (without the stage), else the context's.
pub(super) fn request_path(req: &ApiGatewayProxyRequest) -> String {
    req.path
        .clone()
        .or_else(|| req.request_context.path.clone())
        .unwrap_or_default()
}

/// Labels of the executions the API starts: who asked, and the API request.
pub(super) fn labels(req: &ApiGatewayProxyRequest) -> BTreeMap<String, String> {
    let id = &req.request_context.identity;
    let mut labels = BTreeMap::new();
    if let Some(caller) = id
        .user_arn
        .as_deref()
        .or(id.caller.as_deref())
        .filter(|c| !c.is_empty())
    {
        labels.insert("caller".to_string(), caller.to_string());
    }
    if let Some(rid) = req
        .request_context
        .request_id
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        labels.insert("requestId".to_string(), rid.to_string());
    }
    labels
}
