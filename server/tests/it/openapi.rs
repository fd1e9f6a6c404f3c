//! The machine-readable API: `/v1/openapi.json` is an OpenAPI 3 document that names every route
//! the server answers, every error code, and the session scheme. (Whether the answers keep to it
//! is what the schemathesis fuzz in `cargo xtask test` checks against a running demo server.)

use serde_json::Value;
use unionpass_core::ErrorCode;

use crate::util::TestServer;

/// Every route the server serves, as (method, path template).
const ROUTES: [(&str, &str); 21] = [
    ("get", "/v1/health"),
    ("get", "/v1/time"),
    ("get", "/v1/version"),
    ("get", "/v1/keys"),
    ("get", "/v1/openapi.json"),
    ("post", "/v1/login"),
    ("post", "/v1/logout"),
    ("post", "/v1/sessions/end-all"),
    ("post", "/v1/password"),
    ("post", "/v1/password/reset"),
    ("get", "/v1/sync"),
    ("post", "/v1/sync/push"),
    ("get", "/v1/campaigns"),
    ("post", "/v1/campaigns/{id}/grab"),
    ("get", "/v1/scanner"),
    ("post", "/v1/reauth"),
    ("get", "/v1/activities"),
    ("post", "/v1/activities/{id}/signup"),
    ("post", "/v1/activities/{id}/cancel"),
    ("get", "/v1/polls/{id}/results"),
    ("get", "/v1/update/{target}/{arch}/{bundle}/{current}"),
];

#[tokio::test]
async fn the_document_names_every_route_every_error_code_and_the_session_scheme() {
    let s = TestServer::start().await;
    let resp = s.http.get(s.at("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = resp.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );

    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    documented.sort();
    let mut served: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);

    // each documented route exists: asked without a token or body, it answers its own error,
    // never "no such endpoint" or "wrong method"
    for (method, path) in &ROUTES {
        let url = s.at(&path.replace("{id}", "1"));
        let resp = match *method {
            "get" => s.http.get(url),
            _ => s.http.post(url),
        }
        .send()
        .await
        .unwrap();
        assert!(
            ![404, 405].contains(&resp.status().as_u16()),
            "{method} {path}: {}",
            resp.status()
        );
        // every answer, error or not, declares JSON and is JSON (or empty for 204)
        if resp.status() != 204 {
            let body: Result<Value, _> = resp.json().await;
            assert!(body.is_ok(), "{method} {path}");
        }
    }

    // every schema a `$ref` names is in the document
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for part in text.split("#/components/schemas/").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            schemas.contains_key(&name),
            "{name} is referred to but missing"
        );
    }

    // every stable error code is in the schema, and nothing else
    let mut codes: Vec<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    codes.sort();
    let mut all: Vec<String> = ErrorCode::ALL
        .iter()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    all.sort();
    assert_eq!(codes, all);

    // the member routes ask for the session token; sign-in does not
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["scheme"],
        "bearer"
    );
    assert!(paths["/v1/sync"]["get"]["security"].is_array());
    assert!(paths["/v1/login"]["post"]["security"].is_null());
    assert!(paths["/v1/password/reset"]["post"]["security"].is_null());
    // 429 and 503 say when to come back
    assert!(paths["/v1/login"]["post"]["responses"]["429"]["headers"]["retry-after"].is_object());
}
