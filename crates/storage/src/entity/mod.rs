//! sea-orm entities: the tables as the database sees them. Private to this crate; the stores
//! map them to and from domain types.

pub mod api_key;
pub mod api_key_ip;
pub mod api_key_usage;
pub mod audit_log;
pub mod customer;
pub mod email;
pub mod idempotency_record;
pub mod installation;
pub mod integration_connection;
pub mod integration_contact;
pub mod integration_credential;
pub mod integration_health_check;
pub mod integration_instance;
pub mod integration_oauth_authorization;
pub mod integration_oauth_token;
pub mod job;
pub mod notification;
pub mod organization;
pub mod password_reset;
pub mod service_token;
pub mod session;
pub mod stripe_webhook_endpoint;
pub mod stripe_webhook_event;
pub mod user;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod webhook_event;
