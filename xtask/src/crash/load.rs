//! The mixed load of a crash round: four client threads, each drawing operations from its own
//! seeded generator until the round stops them (just before the kill). Every answer must be one
//! the operation may give (never a 5xx); a request cut by the kill is counted, not an error.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Value, json};

use super::{PROVIDER, Rng};
use crate::error::Error;
use crate::http::Client;

const THREADS: u64 = 4;
/// Webhook endpoints the load may add (the organization's limit is 16).
const MAX_ENDPOINTS: u64 = 4;

/// What the load knows across rounds: the plaintext of every key it was shown.
pub struct State {
    /// `(id, plaintext)` of every key whose create or rotate answer arrived.
    keys: Mutex<Vec<(String, String)>>,
    /// Connections the load saw made (they may have been disconnected since).
    connections: Mutex<Vec<String>>,
    stop: AtomicBool,
    names: AtomicU64,
    endpoints: AtomicU64,
    receiver: String,
    violations: Mutex<Vec<String>>,
}

impl State {
    pub fn new(receiver: String) -> Self {
        Self {
            keys: Mutex::new(Vec::new()),
            connections: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            names: AtomicU64::new(0),
            endpoints: AtomicU64::new(1),
            receiver,
            violations: Mutex::new(Vec::new()),
        }
    }

    /// Tells the threads to stop; requests cut from now on are the kill's.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The keys whose plaintext the load holds.
    pub fn known_keys(&self) -> Vec<(String, String)> {
        self.keys.lock().unwrap().clone()
    }

    fn violation(&self, message: String) {
        self.violations.lock().unwrap().push(message);
    }

    fn name(&self, what: &str) -> String {
        format!("{what} {}", self.names.fetch_add(1, Ordering::Relaxed))
    }

    fn random_key(&self, rng: &mut Rng) -> Option<(String, String)> {
        let keys = self.keys.lock().unwrap();
        // Mostly the newest keys: they are the ones still active.
        let recent = keys.len().min(40) as u64;
        (recent > 0).then(|| keys[keys.len() - 1 - rng.below(recent) as usize].clone())
    }
}

/// Requests answered and requests cut by the kill.
#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    pub answered: u64,
    pub cut: u64,
}

pub struct Running {
    threads: Vec<JoinHandle<Figures>>,
    state: Arc<State>,
}

impl Running {
    /// Waits for the threads (stopped by [`State::stop`]); fails on any violation.
    pub fn join(self) -> Result<Figures, Error> {
        let mut total = Figures::default();
        for thread in self.threads {
            let figures = thread.join().map_err(|_| Error::new("a load thread panicked"))?;
            total.answered += figures.answered;
            total.cut += figures.cut;
        }
        let violations = std::mem::take(&mut *self.state.violations.lock().unwrap());
        if violations.is_empty() {
            Ok(total)
        } else {
            Err(Error::new(format!("the load saw {} violations:\n  {}", violations.len(), violations.join("\n  "))))
        }
    }
}

pub fn start(client: &Client, session: &str, state: &Arc<State>, seed: u64) -> Running {
    state.stop.store(false, Ordering::SeqCst);
    let threads = (0..THREADS)
        .map(|n| {
            let (client, session, state) = (client.clone(), session.to_owned(), Arc::clone(state));
            let mut rng = Rng::new(seed ^ (n + 1).wrapping_mul(0xA24B_AED4_963E_E407));
            std::thread::spawn(move || worker(&client, &session, &state, &mut rng))
        })
        .collect();
    Running { threads, state: Arc::clone(state) }
}

/// What a request came to.
enum Outcome {
    Answer(u16, Value),
    Cut,
}

fn worker(client: &Client, session: &str, state: &State, rng: &mut Rng) -> Figures {
    let mut figures = Figures::default();
    while !state.stopped() {
        let outcome = match rng.below(100) {
            0..=24 => keyed_request(client, state, rng),
            25..=39 => create_key(client, session, state, rng),
            40..=49 => rotate_key(client, session, state, rng),
            50..=57 => revoke_key(client, session, state, rng),
            58..=71 => connect(client, session, state, rng),
            72..=79 => disconnect(client, session, state, rng),
            80..=89 => health_check(client, session, state, rng),
            90..=97 => read(client, session, state, rng),
            _ => add_endpoint(client, session, state),
        };
        match outcome {
            Some(Outcome::Answer(..)) => figures.answered += 1,
            Some(Outcome::Cut) => figures.cut += 1,
            None => {}
        }
    }
    figures
}

/// Sends the request; records a violation unless the answer's status is in `allowed`
/// (a 5xx never is) or the request was cut by the kill.
fn send(
    client: &Client,
    state: &State,
    call: &str,
    bearer: &str,
    body: Option<Value>,
    allowed: &[u16],
) -> Option<Outcome> {
    match client.call(call, Some(bearer), body) {
        Ok((status, answer)) => {
            if status >= 500 || !allowed.contains(&status) {
                state.violation(format!("{call} answered HTTP {status}: {answer}"));
            }
            Some(Outcome::Answer(status, answer))
        }
        Err(_) if state.stopped() => Some(Outcome::Cut),
        Err(err) => {
            state.violation(format!("{call}: no answer before the kill: {err}"));
            Some(Outcome::Cut)
        }
    }
}

fn keyed_request(client: &Client, state: &State, rng: &mut Rng) -> Option<Outcome> {
    let (_, key) = state.random_key(rng)?;
    // 401 for a key revoked (or rotated away) meanwhile.
    if rng.below(2) == 0 {
        send(client, state, "GET /v1/whoami", &key, None, &[200, 401])
    } else {
        let body = json!({"name": "Crash customer", "email": "crash@example.com"});
        send(client, state, "POST /v1/customers", &key, Some(body), &[201, 401])
    }
}

fn key_body(name: &str, rng: &mut Rng) -> Value {
    json!({
        "name": name,
        "description": "cargo xtask crash",
        "scope_level": "read_write",
        "scopes": ["customers.read", "customers.write"],
        "expires_in": if rng.below(2) == 0 { "never" } else { "30d" },
        "environment": if rng.below(4) == 0 { "test" } else { "live" },
        "allowed_ips": [],
    })
}

fn remember_key(state: &State, outcome: &Option<Outcome>) {
    if let Some(Outcome::Answer(201, answer)) = outcome
        && let (Some(id), Some(key)) = (answer["id"].as_str(), answer["key"].as_str())
    {
        state.keys.lock().unwrap().push((id.to_owned(), key.to_owned()));
    }
}

fn create_key(client: &Client, session: &str, state: &State, rng: &mut Rng) -> Option<Outcome> {
    let body = key_body(&state.name("crash key"), rng);
    // 409: the 25-key limit.
    let outcome = send(client, state, "POST /v1/api-keys", session, Some(body), &[201, 409]);
    remember_key(state, &outcome);
    outcome
}

fn rotate_key(client: &Client, session: &str, state: &State, rng: &mut Rng) -> Option<Outcome> {
    let (id, _) = state.random_key(rng)?;
    let name = state.name("crash rotated");
    let body = match rng.below(4) {
        // The default name: taken when this key was rotated before.
        0 => json!({}),
        1 => json!({"name": name}),
        // The old key ends now (a past time means now).
        2 => json!({"name": name, "revoke_old_at": "2000-01-01T00:00:00Z"}),
        _ => json!({"name": name, "revoke_old_at": rfc3339(unix_now() + 3600)}),
    };
    // 409: not active any more, already rotated, the limit, a taken name; 400: the scheduled
    // end falls after the key's own expiry.
    let outcome = send(client, state, &format!("POST /v1/api-keys/{id}/rotate"), session, Some(body), &[201, 400, 409]);
    remember_key(state, &outcome);
    outcome
}

fn revoke_key(client: &Client, session: &str, state: &State, rng: &mut Rng) -> Option<Outcome> {
    let (id, _) = state.random_key(rng)?;
    send(client, state, &format!("POST /v1/api-keys/{id}/revoke"), session, Some(json!({})), &[200])
}

fn connect(client: &Client, session: &str, state: &State, rng: &mut Rng) -> Option<Outcome> {
    let body = json!({"credentials": {"api_key": format!("pm-crash-{}", rng.next())}});
    let call = format!("POST /v1/integrations/providers/{PROVIDER}/connect");
    // 409: already connected (one connection per user and provider).
    let outcome = send(client, state, &call, session, Some(body), &[201, 409]);
    if let Some(Outcome::Answer(201, answer)) = &outcome
        && let Some(id) = answer["id"].as_str()
    {
        state.connections.lock().unwrap().push(id.to_owned());
    }
    outcome
}

fn random_connection(state: &State, rng: &mut Rng) -> Option<String> {
    let connections = state.connections.lock().unwrap();
    let recent = connections.len().min(4) as u64;
    (recent > 0).then(|| connections[connections.len() - 1 - rng.below(recent) as usize].clone())
}

fn disconnect(client: &Client, session: &str, state: &State, rng: &mut Rng) -> Option<Outcome> {
    let id = random_connection(state, rng)?;
    // 404 once it is disconnected.
    send(client, state, &format!("DELETE /v1/integrations/connections/{id}"), session, None, &[204, 404, 409])
}

fn health_check(client: &Client, session: &str, state: &State, rng: &mut Rng) -> Option<Outcome> {
    let id = random_connection(state, rng)?;
    let call = format!("POST /v1/integrations/connections/{id}/health-checks");
    send(client, state, &call, session, Some(json!({})), &[201, 404, 409])
}

fn read(client: &Client, session: &str, state: &State, rng: &mut Rng) -> Option<Outcome> {
    let call = match rng.below(3) {
        0 => "GET /v1/api-keys",
        1 => "GET /v1/integrations/connections",
        _ => "GET /v1/webhook-endpoints",
    };
    send(client, state, call, session, None, &[200])
}

fn add_endpoint(client: &Client, session: &str, state: &State) -> Option<Outcome> {
    if state.endpoints.fetch_add(1, Ordering::SeqCst) >= MAX_ENDPOINTS {
        return None;
    }
    let body = json!({"url": state.receiver, "events": ["api_key.created", "api_key.revoked"]});
    send(client, state, "POST /v1/webhook-endpoints", session, Some(body), &[201])
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `secs` since the epoch as RFC 3339 in UTC (days to a civil date: H. Hinnant's algorithm).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_time_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
    }
}
