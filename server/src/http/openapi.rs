//! `GET /api/v1/openapi.json`: the REST API described as OpenAPI 3.1.
//!
//! The description is written by hand in `openapi.json` beside the routes
//! it describes; the tests below fail when a route in `mod.rs` is missing
//! from it (or it names one that does not exist), or a `$ref` dangles.

use axum::http::header;
use axum::response::IntoResponse;

/// The OpenAPI document, as served.
const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json` (public, like `/healthz`).
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::response::IntoResponse;
    use serde_json::Value;

    use super::OPENAPI_JSON;

    /// The router's source, scanned for the routes it registers.
    const ROUTES_SOURCE: &str = include_str!("mod.rs");

    /// Paths registered only to answer unknown API paths with a JSON 404:
    /// not endpoints, so not documented.
    const NOT_ENDPOINTS: [&str; 1] = ["/api/{*rest}"];

    const METHODS: [&str; 8] = [
        "get", "post", "put", "delete", "patch", "head", "options", "trace",
    ];

    fn spec() -> Value {
        serde_json::from_str(OPENAPI_JSON)
            .unwrap_or_else(|e| panic!("openapi.json is not valid JSON: {e}"))
    }

    /// `src` without `//` and `/* */` comments (string and char literals
    /// kept intact), so a commented-out route is not counted.
    fn strip_comments(src: &str) -> String {
        let b = src.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    let start = i;
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    i = (i + 1).min(b.len());
                    out.extend_from_slice(&b[start..i]);
                }
                // A char literal such as '"' or '\'' (not a lifetime).
                b'\'' if b.get(i + 2) == Some(&b'\'') => {
                    out.extend_from_slice(&b[i..i + 3]);
                    i += 3;
                }
                b'\'' if b.get(i + 1) == Some(&b'\\') => {
                    let end = b[i + 2..]
                        .iter()
                        .position(|c| *c == b'\'')
                        .map_or(b.len(), |p| i + 3 + p);
                    out.extend_from_slice(&b[i..end]);
                    i = end;
                }
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    i += 2;
                    while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                        i += 1;
                    }
                    i = (i + 2).min(b.len());
                    out.push(b' ');
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The text from just after an opening parenthesis up to its matching
    /// closing one, and what follows that.
    fn until_matching_paren<'a>(s: &'a str, context: &str) -> (&'a str, &'a str) {
        let mut depth = 1usize;
        let mut in_string = false;
        let mut escaped = false;
        for (i, c) in s.char_indices() {
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_string = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return (&s[..i], &s[i + 1..]);
                    }
                }
                _ => {}
            }
        }
        panic!("unbalanced parentheses in {context}")
    }

    /// Every `(METHOD, PATH)` that `.route("PATH", get(h).post(h2)…)`
    /// registers in `src`.
    fn registered_routes(src: &str) -> BTreeSet<(String, String)> {
        let src = strip_comments(src);
        for unsupported in [".nest(", ".nest_service(", ".merge(", ".route_service("] {
            assert!(
                !src.contains(unsupported),
                "http/mod.rs uses `{unsupported}`, which this test cannot see through: \
                 extend `registered_routes` so the routes it adds are checked against \
                 openapi.json"
            );
        }
        let mut routes = BTreeSet::new();
        let mut rest = src.as_str();
        while let Some(at) = rest.find(".route(") {
            let (args, after) = until_matching_paren(&rest[at + ".route(".len()..], "a .route(…)");
            rest = after;
            let context = format!(".route({})", args.trim());
            let args = args.trim_start();
            let path_and_more = args
                .strip_prefix('"')
                .unwrap_or_else(|| panic!("{context}: the path is not a string literal"));
            let (path, methods) = path_and_more
                .split_once('"')
                .unwrap_or_else(|| panic!("{context}: unterminated path"));
            if NOT_ENDPOINTS.contains(&path) {
                continue;
            }
            let mut chain = methods
                .trim_start()
                .strip_prefix(',')
                .unwrap_or_else(|| panic!("{context}: no method router after the path"))
                .trim_start();
            // `get(h)`, `axum::routing::post(h)`, `get_service(s)`, then
            // chained `.post(h)`, `.delete(h)`…
            loop {
                let name_end = chain
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(chain.len());
                let name = chain[..name_end].rsplit("::").next().unwrap_or_default();
                let method = name.strip_suffix("_service").unwrap_or(name);
                assert!(
                    METHODS.contains(&method),
                    "{context}: cannot tell the HTTP method of `{name}(…)`; use get/post/… \
                     (or extend this test) so the route can be checked against openapi.json"
                );
                let call = chain[name_end..]
                    .trim_start()
                    .strip_prefix('(')
                    .unwrap_or_else(|| panic!("{context}: `{name}` is not called"));
                let (_, after_call) = until_matching_paren(call, &context);
                routes.insert((method.to_owned(), path.to_owned()));
                let after_call = after_call.trim_start();
                match after_call.strip_prefix('.') {
                    Some(next) => chain = next.trim_start(),
                    None if after_call.trim_end().trim_end_matches(',').is_empty() => break,
                    None => panic!("{context}: unexpected `{after_call}` after the method router"),
                }
            }
        }
        routes
    }

    fn documented_routes(spec: &Value) -> BTreeSet<(String, String)> {
        let Some(paths) = spec["paths"].as_object() else {
            panic!("openapi.json has no `paths` object")
        };
        let mut routes = BTreeSet::new();
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                panic!("paths.{path} is not an object")
            };
            for method in item.keys().filter(|k| METHODS.contains(&k.as_str())) {
                routes.insert((method.clone(), path.clone()));
            }
        }
        routes
    }

    fn show(routes: &BTreeSet<&(String, String)>) -> String {
        routes
            .iter()
            .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    #[test]
    fn openapi_is_3_1_with_title_and_version() {
        let spec = spec();
        let version = spec["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1."), "openapi: {version:?}");
        for field in ["title", "version"] {
            let value = spec["info"][field].as_str().unwrap_or_default();
            assert!(!value.trim().is_empty(), "info.{field} is missing or empty");
        }
    }

    #[test]
    fn openapi_documents_exactly_the_registered_routes() {
        let registered = registered_routes(ROUTES_SOURCE);
        // A scanner that finds nothing would make this test pass vacuously.
        for route in [("get", "/healthz"), ("get", "/api/v1/openapi.json")] {
            let route = (route.0.to_owned(), route.1.to_owned());
            assert!(registered.contains(&route), "scanner missed {route:?}");
        }
        let documented = documented_routes(&spec());
        let undocumented: BTreeSet<_> = registered.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "routes registered in http/mod.rs but missing from openapi.json: {}",
            show(&undocumented)
        );
        let unregistered: BTreeSet<_> = documented.difference(&registered).collect();
        assert!(
            unregistered.is_empty(),
            "routes in openapi.json that http/mod.rs does not register: {}",
            show(&unregistered)
        );
    }

    #[test]
    fn openapi_scanner_sees_chained_and_qualified_methods_and_skips_comments() {
        let src = r#"
            Router::new()
                .route("/a", get(a::list).post(a::create))
                .route(
                    "/b/{id}",
                    axum::routing::delete(b::gone)
                        .put(b::replace),
                )
                // .route("/commented", get(nothing))
                /* .route("/blocked", get(nothing)) */
                .route("/api/{*rest}", axum::routing::any(not_found))
                .layer(x)
        "#;
        let found: Vec<String> = registered_routes(src)
            .into_iter()
            .map(|(m, p)| format!("{m} {p}"))
            .collect();
        assert_eq!(
            found,
            ["delete /b/{id}", "get /a", "post /a", "put /b/{id}"]
        );
    }

    #[test]
    fn openapi_operations_are_described() {
        let spec = spec();
        let mut ids = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            let declared: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, op) in item.as_object().into_iter().flatten() {
                let at = format!("{} {path}", method.to_uppercase());
                for field in ["summary", "description", "operationId"] {
                    let value = op[field].as_str().unwrap_or_default();
                    assert!(!value.trim().is_empty(), "{at}: no {field}");
                }
                assert!(
                    ids.insert(op["operationId"].as_str().unwrap_or_default()),
                    "{at}: operationId used twice"
                );
                let responses = op["responses"].as_object();
                assert!(
                    responses.is_some_and(|r| r.keys().any(|k| k.starts_with('2'))),
                    "{at}: no 2xx response"
                );
                let in_path: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .inspect(|p| assert_eq!(p["required"], true, "{at}: path parameter required"))
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                assert_eq!(in_path, declared, "{at}: path parameters");
            }
        }
    }

    fn collect_refs<'a>(value: &'a Value, at: &str, out: &mut Vec<(String, &'a str)>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(target)) => out.push((at.to_owned(), target)),
                        _ => collect_refs(v, &format!("{at}/{key}"), out),
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    collect_refs(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn openapi_refs_resolve() {
        let spec = spec();
        let mut refs = Vec::new();
        collect_refs(&spec, "", &mut refs);
        assert!(!refs.is_empty(), "no $ref at all");
        for (at, target) in refs {
            let Some(pointer) = target.strip_prefix('#') else {
                panic!("{at}: $ref {target:?} is not local to this document")
            };
            assert!(
                pointer.starts_with("/components/"),
                "{at}: $ref {target:?} does not point into components"
            );
            assert!(
                spec.pointer(pointer).is_some_and(Value::is_object),
                "{at}: $ref {target:?} names nothing"
            );
        }
    }

    #[tokio::test]
    async fn openapi_is_served_as_json() {
        let response = super::openapi().await.into_response();
        assert_eq!(response.status(), axum::http::StatusCode::OK);
        assert_eq!(
            response.headers()[axum::http::header::CONTENT_TYPE],
            "application/json"
        );
    }
}
