//! Answers the gateway and the JSON extractor give for any operation that takes a body,
//! added to every such operation of both OpenAPI documents so no route can forget them
//! (schemathesis' `status_code_conformance` found routes that did).

use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

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

/// Adds the [`BODY_ANSWERS`] an operation with a request body does not document yet.
pub fn with_body_answers(mut doc: OpenApi) -> OpenApi {
    for item in doc.paths.paths.values_mut() {
        let ops: [&mut Option<Operation>; 5] = [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
            &mut item.get,
        ];
        for op in ops.into_iter().flatten() {
            if op.request_body.is_none() {
                continue;
            }
            for (status, description) in BODY_ANSWERS {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    "application/problem+json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("Problem")))
                                        .build(),
                                )
                                .build(),
                        )
                    });
            }
        }
    }
    doc
}
