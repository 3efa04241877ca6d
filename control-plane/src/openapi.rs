//! The OpenAPI 3 document of every route (`control-plane/openapi.json`), served at
//! `GET /openapi.json` without authentication.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The document, as checked in.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// `GET /openapi.json`.
pub(crate) async fn serve() -> Response {
    let mut response = (StatusCode::OK, OPENAPI_JSON).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::routes::route_specs;

    /// Every route the router serves is documented, and every documented route is served.
    #[test]
    fn document_and_router_agree() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("valid JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented = BTreeSet::new();
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                    let op = &item[method];
                    assert!(
                        op["operationId"].is_string(),
                        "{method} {path} has no operationId"
                    );
                    assert!(
                        op["responses"].is_object(),
                        "{method} {path} has no responses"
                    );
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let served: BTreeSet<(String, String)> = route_specs()
            .iter()
            .map(|s| (s.method.to_string(), s.path.to_string()))
            .collect();
        assert_eq!(
            documented.difference(&served).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "documented but not served"
        );
        assert_eq!(
            served.difference(&documented).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "served but not documented"
        );
        // Operation ids are the route table's operation names.
        for spec in route_specs() {
            let op = &paths[spec.path][spec.method.as_str().to_lowercase()];
            assert_eq!(
                op["operationId"].as_str(),
                Some(spec.operation),
                "{}",
                spec.path
            );
        }
    }
}
