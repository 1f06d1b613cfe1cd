//! `ApiJson<T>`: the only way a request body enters the program.
//!
//! Before any domain type sees the body it must be `application/json`, within the size
//! limit, well-formed UTF-8 JSON, nested at most [`MAX_DEPTH`] deep, free of duplicate
//! keys, control characters and overlong strings. Then it is deserialised into `T`
//! (which denies unknown fields) and every failure names the field by JSON Pointer.

use std::collections::HashSet;
use std::fmt;

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::{ApiError, FieldError};

/// Deepest nesting of arrays and objects accepted in a body.
pub const MAX_DEPTH: usize = 16;
/// Longest string (in bytes) accepted anywhere in a body.
pub const MAX_STRING: usize = 4096;

/// A JSON request body, checked and parsed into `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_body(req).await?;
        parse(&bytes).map(ApiJson)
    }
}

/// A JSON request body parsed into `T`, with the exact bytes it came from (for
/// `Idempotency-Key`, which must recognise the same request again).
#[derive(Debug, Clone)]
pub struct ApiJsonBytes<T>(pub T, pub bytes::Bytes);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJsonBytes<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_body(req).await?;
        let value = parse(&bytes)?;
        Ok(ApiJsonBytes(value, bytes))
    }
}

/// The error a request body yields when the client did not send all of it within
/// `http.body_read_timeout_secs` (set by the transport, answered here with 408).
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout;

impl fmt::Display for BodyReadTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request body did not arrive within the body read timeout")
    }
}

impl std::error::Error for BodyReadTimeout {}

/// Whether `e` or anything in its source chain is one of ours of type `E`.
fn caused_by<E: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<E>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The body of an `application/json` request, within the size limit.
async fn json_body(req: Request) -> Result<bytes::Bytes, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be sent with Content-Type: application/json",
        ));
    }
    // The body-limit layer has already bounded the stream; `usize::MAX` here only
    // means "do not add a second, different limit".
    match axum::body::to_bytes(req.into_body(), usize::MAX).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let too_large = caused_by::<http_body_util::LengthLimitError>(&e)
                || e.to_string().contains("length limit");
            Err(if caused_by::<BodyReadTimeout>(&e) {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    "the request body did not arrive in time",
                )
            } else if too_large {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than the limit",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "body_read_failed",
                    "the request body could not be read",
                )
            })
        }
    }
}

/// Checks and parses a JSON document into `T`. Public so fuzz targets can drive it.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    check_document(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let pointer = to_pointer(e.path());
        let inner = e.into_inner();
        field_error(pointer, &inner)
    })?;
    de.end().map_err(|e| field_error(String::new(), &e))?;
    Ok(value)
}

fn check_document(bytes: &[u8]) -> Result<(), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let result = Check { depth: 0 }
        .deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track))
        .and_then(|()| de.end());
    result.map_err(|e| field_error(to_pointer(&track.path()), &e))
}

fn field_error(pointer: String, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let msg = e.to_string();
    // serde_json appends " at line L column C"; the pointer says where instead.
    let text = msg
        .rsplit_once(" at line ")
        .map_or(msg.as_str(), |(head, _)| head)
        .to_owned();
    let (code, pointer) = match e.classify() {
        // serde_json reports 1e400 as a syntax error; it is a well-formed but unusable value.
        Category::Syntax if text.contains("number out of range") => ("out_of_range", pointer),
        Category::Syntax | Category::Eof | Category::Io => ("malformed_json", pointer),
        Category::Data => classify_data(&text, pointer),
    };
    if code == "malformed_json" {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the request body is not valid JSON: {text}"),
        )
        .with_errors(vec![FieldError {
            pointer,
            code: code.to_owned(),
            message: text,
        }]);
    }
    ApiError::validation(vec![FieldError {
        pointer,
        code: code.to_owned(),
        message: text,
    }])
}

fn classify_data(text: &str, pointer: String) -> (&'static str, String) {
    for (prefix, code) in [
        ("unknown field `", "unknown_field"),
        ("duplicate key `", "duplicate_key"),
        ("duplicate field `", "duplicate_key"),
        ("missing field `", "missing_field"),
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let name = rest.split('`').next().unwrap_or_default();
            // Raised by the containing object: the tracked path may or may not already
            // end with the key, depending on where the deserializer noticed.
            let token = format!("/{}", escape_token(name));
            let pointer = if pointer.ends_with(&token) {
                pointer
            } else {
                format!("{pointer}{token}")
            };
            return (code, pointer);
        }
    }
    let code = if text.starts_with("invalid type") {
        "invalid_type"
    } else if text.starts_with("nesting") {
        "too_deep"
    } else if text.starts_with("control character") {
        "control_character"
    } else if text.starts_with("string longer") {
        "too_long"
    } else if text.contains("out of range") {
        "out_of_range"
    } else {
        "invalid_value"
    };
    (code, pointer)
}

fn escape_token(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

fn to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push('/');
                out.push_str(&escape_token(key));
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// Walks a document without building it, refusing what no endpoint accepts.
struct Check {
    depth: usize,
}

impl Check {
    fn nested<E: de::Error>(&self) -> Result<Check, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(Check {
            depth: self.depth + 1,
        })
    }
}

fn check_str<E: de::Error>(s: &str) -> Result<(), E> {
    if s.len() > MAX_STRING {
        return Err(E::custom(format!("string longer than {MAX_STRING} bytes")));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(E::custom("control characters are not allowed in strings"));
    }
    Ok(())
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(E::custom("number out of range"))
        }
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        check_str(s)
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        while seq
            .next_element_seed(Check { depth: inner.depth })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            check_str::<A::Error>(&key)?;
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            map.next_value_seed(Check { depth: inner.depth })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        qty: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        legs: Vec<Inner>,
    }

    fn err(json: &str) -> (String, String) {
        let e = parse::<Body>(json.as_bytes()).unwrap_err();
        let p = e.to_problem();
        (
            p.code,
            p.errors
                .first()
                .map(|f| f.pointer.clone())
                .unwrap_or_default(),
        )
    }

    fn field_code(json: &str) -> String {
        let e = parse::<Body>(json.as_bytes()).unwrap_err();
        e.to_problem().errors[0].code.clone()
    }

    #[test]
    fn accepts_a_good_body() {
        let b: Body = parse(br#"{"name":"x","legs":[{"qty":"1"}]}"#).unwrap();
        assert_eq!(b.legs.len(), 1);
    }

    #[test]
    fn names_the_field_of_each_problem() {
        assert_eq!(
            err(r#"{"name":"x","legs":[{"qty":"1","px":"2"}]}"#),
            ("validation_failed".into(), "/legs/0/px".into())
        );
        assert_eq!(
            field_code(r#"{"name":"x","legs":[{"qty":"1","px":"2"}]}"#),
            "unknown_field"
        );
        assert_eq!(err(r#"{"name":"x","name":"y","legs":[]}"#).1, "/name");
        assert_eq!(
            field_code(r#"{"name":"x","name":"y","legs":[]}"#),
            "duplicate_key"
        );
        assert_eq!(err(r#"{"legs":[]}"#).1, "/name");
        assert_eq!(field_code(r#"{"name":1,"legs":[]}"#), "invalid_type");
        assert_eq!(err(r#"{"name":1,"legs":[]}"#).1, "/name");
        assert_eq!(
            field_code(r#"{"name":"a\u0000b","legs":[]}"#),
            "control_character"
        );
        assert_eq!(
            field_code(r#"{"name":"x","legs":[],"n":1e400}"#),
            "out_of_range"
        );
        assert_eq!(err(r#"{"name":"x","legs":[]"#).0, "malformed_json");
        assert_eq!(
            err(r#"{"name":"x","legs":[]} trailing"#).0,
            "malformed_json"
        );
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert_eq!(
            field_code(&format!(r#"{{"name":"x","legs":{deep}}}"#)),
            "too_deep"
        );
        let long = "a".repeat(MAX_STRING + 1);
        assert_eq!(
            field_code(&format!(r#"{{"name":"{long}","legs":[]}}"#)),
            "too_long"
        );
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let e = parse::<Body>(b"{\"name\":\"\xff\",\"legs\":[]}").unwrap_err();
        assert_eq!(e.code(), "malformed_json");
    }
}
