//! Answers the gateway gives for any operation, added to every operation of both OpenAPI
//! documents so no route can forget them (schemathesis' `status_code_conformance` found
//! routes that did): 429 and 503 from the rate limiter and load shedding everywhere but
//! the health probes, and the JSON extractor's 408/413/415 wherever there is a body.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, Object, OpenApi, Ref, RefOr, ResponseBuilder, Type,
};

/// Status, then the description, of each answer [`crate::json::ApiJson`] can give before
/// the handler runs.
const BODY_ANSWERS: [(&str, &str); 3] = [
    (
        "408",
        "The body did not arrive within `http.body_read_timeout_secs` (`body_timeout`).",
    ),
    ("413", "Body over the limit (`payload_too_large`)."),
    ("415", "Body is not JSON (`unsupported_media_type`)."),
];

const LIMITED: &str = "Over a rate limit (`rate_limited`), or banned for a while after many \
    (`temporarily_banned`, end time in `detail`); see `Retry-After` and `RateLimit`.";
const SHED: &str = "The server is at capacity (`overloaded`); see `Retry-After`.";

/// Paths the gateway never limits or sheds (a load balancer must see a healthy node).
const EXEMPT: [&str; 2] = ["/healthz", "/readyz"];

/// Adds the gateway's answers to every operation of `doc`:
/// - 429 `rate_limited` / `temporarily_banned` and 503 `overloaded`, with
///   `Retry-After` (and the `RateLimit` / `RateLimit-Policy` headers on 429), except on
///   the health probes. An operation that already documents the status keeps its own
///   text with the gateway's meaning appended.
/// - the [`BODY_ANSWERS`] on operations with a request body, unless documented already.
pub fn with_gateway_answers(mut doc: OpenApi) -> OpenApi {
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops: [&mut Option<Operation>; 5] = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            if !EXEMPT.contains(&path.as_str()) {
                add_gateway_answer(op, "429", LIMITED);
                add_gateway_answer(op, "503", SHED);
            }
            if op.request_body.is_some() {
                for (status, description) in BODY_ANSWERS {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(problem(description).build()));
                }
            }
        }
    }
    doc
}

/// A problem+json response with `description`.
fn problem(description: impl Into<String>) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

fn header(ty: Type, text: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(Object::with_type(ty)))
        .description(Some(text))
        .build()
}

fn add_gateway_answer(op: &mut Operation, status: &str, text: &str) {
    let earlier = match op.responses.responses.get(status) {
        Some(RefOr::T(r)) => Some(r.description.clone()),
        _ => None,
    };
    let description = match earlier {
        Some(own) if !own.contains(text) => format!("{own} {text}"),
        Some(own) => own,
        None => text.to_owned(),
    };
    let mut response = problem(description).header(
        "Retry-After",
        header(Type::Integer, "Seconds to wait before retrying."),
    );
    if status == "429" {
        response = response
            .header(
                "RateLimit",
                header(
                    Type::String,
                    "Where each policy stands: `\"name\";r=LEFT;t=SECONDS`.",
                ),
            )
            .header(
                "RateLimit-Policy",
                header(
                    Type::String,
                    "The policies charged: `\"name\";q=QUOTA;w=WINDOW`.",
                ),
            );
    }
    op.responses
        .responses
        .insert(status.to_owned(), RefOr::T(response.build()));
}
