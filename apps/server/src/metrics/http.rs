//! Requests by route: `otesse_http_requests_total{route, method, status_class}` and
//! `otesse_http_request_duration_seconds{route, method}`.
//!
//! `route` is the pattern that matched (`/v1/api-keys/{id}`), never the path, or `unmatched`.
//! Each resource of the route table is named after its full pattern, so the middleware reads it
//! with `match_name`, which after routing is an index walk, without allocating. The series of
//! every `(route, method)` of the table are kept here, each resolved on its first request: a
//! request then costs a hash lookup and a few atomic adds, where `with_label_values` would hash
//! and lock the metric's map each time. Other requests (a method the route does not serve, the
//! dashboard's and the docs' resources, unmatched paths) take that slower way, with labels from
//! closed sets all the same.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::http::Method;
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};

use super::Metrics;

/// The route label of a request no resource matched.
pub const UNMATCHED: &str = "unmatched";

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The index of `status`'s class in [`STATUS_CLASSES`].
fn status_class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

/// The method label: the standard methods by name, anything else `other` (a client may send any
/// token as a method, and each would be a new series).
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// One `(route, method)` of the route table: its series, each made on first use.
#[derive(Clone)]
struct Series {
    route: String,
    method: Method,
    by_class: [OnceLock<IntCounter>; 5],
    duration: OnceLock<Histogram>,
}

/// Records every answered request; built once from the route table. Each worker holds a clone
/// (the series are shared; what a clone resolves on its own is the same series).
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    /// By route pattern, then method (a handful per route: a linear search).
    routes: HashMap<String, Vec<Series>>,
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").field("routes", &self.routes.len()).finish()
    }
}

impl HttpMetrics {
    /// For the `(method, route pattern)` pairs of the route table.
    pub fn new(metrics: &Metrics, table: impl IntoIterator<Item = (Method, String)>) -> Self {
        let mut routes: HashMap<String, Vec<Series>> = HashMap::new();
        for (method, route) in table {
            let series =
                Series { route: route.clone(), method, by_class: Default::default(), duration: OnceLock::new() };
            routes.entry(route).or_default().push(series);
        }
        Self { requests: metrics.http_requests.clone(), duration: metrics.http_duration.clone(), routes }
    }

    /// Counts one answered request. `route` is the matched pattern (`None` when nothing matched).
    pub fn record(&self, route: Option<&str>, method: &Method, status: u16, elapsed: Duration) {
        let class = status_class(status);
        let seconds = elapsed.as_secs_f64();
        let known = route.and_then(|route| self.routes.get(route)).and_then(|s| s.iter().find(|s| s.method == method));
        match known {
            Some(series) => {
                let (route, method) = (series.route.as_str(), method_label(method));
                let requests = series.by_class[class]
                    .get_or_init(|| self.requests.with_label_values(&[route, method, STATUS_CLASSES[class]]));
                requests.inc();
                series.duration.get_or_init(|| self.duration.with_label_values(&[route, method])).observe(seconds);
            }
            None => {
                let (route, method) = (route.unwrap_or(UNMATCHED), method_label(method));
                self.requests.with_label_values(&[route, method, STATUS_CLASSES[class]]).inc();
                self.duration.with_label_values(&[route, method]).observe(seconds);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(metrics: &Metrics, line_start: &str) -> Option<f64> {
        metrics.render().lines().find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
    }

    #[test]
    fn statuses_fall_in_their_class_and_unknown_methods_in_one_label() {
        assert_eq!([100, 204, 301, 404, 429, 500, 599].map(status_class), [0, 1, 2, 3, 3, 4, 4]);
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn table_routes_and_others_land_in_the_same_families() {
        let metrics = Metrics::new();
        let http = HttpMetrics::new(&metrics, [(Method::GET, "/v1/api-keys/{id}".to_owned())]);
        http.record(Some("/v1/api-keys/{id}"), &Method::GET, 200, Duration::from_millis(3));
        http.record(Some("/v1/api-keys/{id}"), &Method::GET, 404, Duration::from_millis(1));
        http.record(Some("/v1/api-keys/{id}"), &Method::GET, 200, Duration::from_millis(2));
        // A method the route does not serve, and a path no route matched.
        http.record(Some("/v1/api-keys/{id}"), &Method::PUT, 405, Duration::from_millis(1));
        http.record(None, &Method::from_bytes(b"BREW").unwrap(), 404, Duration::from_millis(1));

        let requests = r#"otesse_http_requests_total{method="GET",route="/v1/api-keys/{id}",status_class="#;
        assert_eq!(sample(&metrics, &format!(r#"{requests}"2xx"}}"#)), Some(2.0));
        assert_eq!(sample(&metrics, &format!(r#"{requests}"4xx"}}"#)), Some(1.0));
        let put = r#"otesse_http_requests_total{method="PUT",route="/v1/api-keys/{id}",status_class="4xx"}"#;
        assert_eq!(sample(&metrics, put), Some(1.0));
        let unmatched = r#"otesse_http_requests_total{method="other",route="unmatched",status_class="4xx"}"#;
        assert_eq!(sample(&metrics, unmatched), Some(1.0));
        let count = r#"otesse_http_request_duration_seconds_count{method="GET",route="/v1/api-keys/{id}"}"#;
        assert_eq!(sample(&metrics, count), Some(3.0));
        let sum = r#"otesse_http_request_duration_seconds_sum{method="GET",route="/v1/api-keys/{id}"}"#;
        assert!((sample(&metrics, sum).unwrap() - 0.006).abs() < 1e-9);
    }
}
