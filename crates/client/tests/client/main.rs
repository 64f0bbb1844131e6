//! The client's tests, one binary: against the real server in-process (`api`), against a
//! wiremock fake for what a real server will not do on demand (`retries`: 429s, 503s, dropped
//! connections), and the check that the generated types are the server's (`generated`).

mod api;
mod generated;
mod retries;
mod server;
