//! Shared by the dashboard's test binaries: start the dashboard in-process on an ephemeral
//! loopback port, and talk to it over real HTTP.
#![allow(dead_code)] // each test binary uses its own part

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode, header};
use examples::dashboard::DashboardFleet;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::net::TcpListener;

/// Starts the dashboard on 127.0.0.1 with a port of the system's choosing, in a task of the
/// current runtime (it stops with the test).
pub async fn start_dashboard() -> SocketAddr {
    start_dashboard_with(None).await
}

/// [`start_dashboard`], its caches in `fleet` (which it installs as the process's fleet).
pub async fn start_dashboard_with(fleet: Option<DashboardFleet>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(examples::dashboard::serve(listener, fleet));
    address
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    /// The body as JSON; panics, showing the body, if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.text))
    }
}

/// A plain-HTTP client of one running dashboard.
#[derive(Clone)]
pub struct Dashboard {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Dashboard {
    /// Starts a dashboard and a client of it.
    pub async fn start() -> Self {
        Dashboard::at(start_dashboard().await)
    }

    /// Starts a dashboard whose caches are in `fleet`, and a client of it.
    pub async fn start_with(fleet: DashboardFleet) -> Self {
        Dashboard::at(start_dashboard_with(Some(fleet)).await)
    }

    /// A client of the dashboard listening at `address` (in this process or another).
    pub fn at(address: SocketAddr) -> Self {
        Dashboard {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{address}"),
        }
    }

    /// Sends `body` (raw text) with `method` to `path`.
    pub async fn send(&self, method: Method, path: &str, body: Option<&str>) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
        let response = self
            .client
            .request(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            text: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// `GET path`, which must succeed with JSON.
    pub async fn get(&self, path: &str) -> Value {
        self.ok(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body, which must succeed with JSON.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.ok(Method::POST, path, Some(body)).await
    }

    /// `method path`, which must succeed with JSON.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|body| body.to_string());
        let answer = self.send(method.clone(), path, body.as_deref()).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{method} {path} answered {answer:?}"
        );
        assert!(
            answer.content_type.starts_with("application/json"),
            "{answer:?}"
        );
        answer.json()
    }

    /// One cache's entry of `/api/metrics`.
    pub async fn cache_metrics(&self, cache: &str) -> Value {
        self.get("/api/metrics").await["caches"][cache].clone()
    }

    /// `/metrics`, parsed strictly.
    pub async fn exposition(&self) -> HashMap<String, Family> {
        let answer = self.send(Method::GET, "/metrics", None).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        parse_exposition(&answer.text)
    }
}

/// One metric family of a text exposition.
pub struct Family {
    pub kind: String,
    pub samples: Vec<(String, f64)>,
}

impl Family {
    pub fn value(&self, labels: &str) -> f64 {
        self.samples
            .iter()
            .find(|(l, _)| l == labels)
            .unwrap_or_else(|| panic!("no sample {{{labels}}}"))
            .1
    }
}

/// Parses the text exposition strictly: each family opens with `# HELP` then `# TYPE`,
/// appears once, and its samples follow, named after it.
pub fn parse_exposition(text: &str) -> HashMap<String, Family> {
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut current: Option<String> = None;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (name, doc) = help.split_once(' ').expect("HELP has a name and a text");
            assert!(!doc.is_empty(), "{name} has help text");
            let type_line = lines.next().expect("TYPE follows HELP");
            let kind = type_line
                .strip_prefix(&format!("# TYPE {name} "))
                .unwrap_or_else(|| panic!("TYPE of {name} follows its HELP: {type_line}"));
            assert!(matches!(kind, "counter" | "gauge"), "{name}: {kind}");
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name} is a {kind}"
            );
            let fresh = families
                .insert(
                    name.to_owned(),
                    Family {
                        kind: kind.to_owned(),
                        samples: Vec::new(),
                    },
                )
                .is_none();
            assert!(fresh, "{name} appears once");
            current = Some(name.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let name = current
            .as_ref()
            .expect("a sample follows its family's HELP and TYPE");
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let labels = match series.strip_prefix(name.as_str()) {
            Some("") => String::new(),
            Some(labelled) => labelled
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("labels in braces: {line}"))
                .to_owned(),
            None => panic!("sample {line} is not of family {name}"),
        };
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        families
            .get_mut(name)
            .unwrap()
            .samples
            .push((labels, value));
    }
    families
}
