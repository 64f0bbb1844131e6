//! End-to-end tests of the server: each test spawns the real application on port 0 over a
//! fresh database (SQLite, or PostgreSQL when `OTESSE_TEST_POSTGRES_URL` is set) and talks
//! HTTP to it like a client would.

mod helpers;

mod api_keys;
mod browser;
mod canary;
mod cli;
mod crash;
mod customers;
mod dashboard;
mod demo;
mod idempotency;
mod integrations;
mod jobs;
mod key_auth;
mod metrics;
mod oauth;
mod openapi;
mod platform;
mod processes;
mod races;
mod rate_limits;
mod readme;
mod readme_snippets;
mod revocation;
mod sessions;
mod stripe;
mod usage;
mod users;
mod verify;
mod webhooks;
