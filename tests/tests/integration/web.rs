//! The web app's static files: directory redirects stay on this origin.

use reqwest::redirect::Policy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use aidsync_tests::harness::{TestDb, TestServer};

/// The status and `Location` of a request sent byte for byte as written
/// (`reqwest` would normalise `\` and absolute-form targets away).
async fn raw_get(server: &TestServer, target: &str) -> (u16, Option<String>) {
    let addr = server.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line for {target:?}: {head}"));
    let location = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_owned())
    });
    (status, location)
}

/// `GET /coordinator` redirects to `/coordinator/`; `GET //coordinator`
/// must not redirect to `//coordinator/`, which a browser would follow to
/// the host `coordinator` (an open redirect), nor may any other spelling
/// send a browser off this origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_directory_redirects_stay_on_this_origin() {
    let db = TestDb::sqlite().unwrap();
    let server = TestServer::start(db.url()).await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| {
        let request = http.get(format!("{}{path}", server.base));
        async move { request.send().await.unwrap() }
    };

    let dir = get("/coordinator").await;
    assert_eq!(dir.status(), 307);
    assert_eq!(dir.headers()["location"], "/coordinator/");
    let with_query = get("/coordinator?region=Kharkiv").await;
    assert_eq!(
        with_query.headers()["location"],
        "/coordinator/?region=Kharkiv"
    );
    assert_eq!(get("/coordinator/").await.status(), 200);

    for path in ["//coordinator", "///coordinator", "//coordinator?x=1"] {
        let response = get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.headers().get("location").is_none(), "{path}");
    }
    for target in ["//coordinator", "/\\coordinator", "/%2Fcoordinator"] {
        let (status, location) = raw_get(&server, target).await;
        assert_eq!((status, location), (404, None), "{target}");
    }
    // An absolute-form target is served as its path: the redirect names
    // no host.
    assert_eq!(
        raw_get(&server, "http://evil.example/coordinator").await,
        (307, Some("/coordinator/".to_owned()))
    );
    server.stop().await.unwrap();
}

/// The web app's files cross a phone's network compressed (the wasm is
/// precompressed by `scripts/build-web`, checked by the browser tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_files_are_served_compressed() {
    let db = TestDb::sqlite().unwrap();
    let server = TestServer::start(db.url()).await.unwrap();
    let http = reqwest::Client::new();
    for path in ["/app.js", "/style.css", "/coordinator/dashboard.js"] {
        let plain = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        let plain_len = plain.bytes().await.unwrap().len();

        let gzipped = http
            .get(format!("{}{path}", server.base))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(gzipped.status(), 200, "{path}");
        assert_eq!(gzipped.headers()["content-encoding"], "gzip", "{path}");
        let gzipped_len = gzipped.bytes().await.unwrap().len();
        assert!(
            gzipped_len * 2 < plain_len,
            "{path}: {gzipped_len} bytes gzipped, {plain_len} plain"
        );
    }
}

/// The web app's files are revalidated on every visit (a new release is
/// never hidden behind an old copy); only versioned paths are kept for long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_files_are_revalidated_and_versioned_ones_kept() {
    let db = TestDb::sqlite().unwrap();
    let server = TestServer::start(db.url()).await.unwrap();
    let http = reqwest::Client::new();
    let app = http
        .get(format!("{}/app.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(app.status(), 200);
    assert_eq!(app.headers()["cache-control"], "no-cache");
    // A 404 (any path) is not cached as a file.
    let missing = http
        .get(format!("{}/pkg/zxing-0.0.0/nothing.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("cache-control").is_none());
    // The API decides its own caching: none of this applies there.
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_ne!(
        health.headers().get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-cache"[..])
    );
}
