//! The webhook payloads (W3): what each delivered event looks like on the wire. The one place
//! events become JSON: `{"id": "msg_...", "type", "timestamp", "data"}`, `data` shaped per
//! kind from the event's facts, which never hold a secret.

use chrono::SecondsFormat;
use otesse_domain::api_key::ApiKey;
use otesse_domain::event::{DomainEvent, Event};
use otesse_domain::integration::{HealthCheck, ProviderSlug};
use serde_json::{Value, json};
use uuid::Uuid;

/// The body delivered for `event`, or `None` when endpoints do not receive its kind.
pub(crate) fn webhook_body(event: &DomainEvent) -> Option<String> {
    if !event.kind().delivered() {
        return None;
    }
    let body = json!({
        "id": event.message_id(),
        "type": event.kind().as_str(),
        "timestamp": event.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data(&event.event),
    });
    Some(body.to_string())
}

fn data(event: &Event) -> Value {
    match event {
        Event::ApiKeyCreated { key } | Event::ApiKeyRotated { key, .. } | Event::ApiKeyRevoked { key } => api_key(key),
        Event::ApiKeyExpiring { key, days_left } => {
            let mut data = api_key(key);
            data["days_left"] = (*days_left).into();
            data
        }
        Event::IntegrationConnected { connection_id, provider, check, .. }
        | Event::HealthCheckFailed { connection_id, provider, check }
        | Event::HealthCheckRecovered { connection_id, provider, check } => {
            connection(*connection_id, provider, Some(check))
        }
        Event::IntegrationDisconnected { connection_id, provider }
        | Event::IntegrationNeedsReauthorization { connection_id, provider } => {
            connection(*connection_id, provider, None)
        }
        Event::WebhookTest { endpoint_id } => {
            json!({ "endpoint_id": endpoint_id, "message": "This is a test event from Otesse." })
        }
        // Audited only: never delivered (refused by `webhook_body`), so never shaped.
        Event::IntegrationConnectFailed { connection_id, provider, .. }
        | Event::IntegrationUpdated { connection_id, provider, .. } => connection(*connection_id, provider, None),
        Event::UserUpdated { user }
        | Event::UserDeactivated { user }
        | Event::UserReactivated { user }
        | Event::UserDeleted { user }
        | Event::UserPasswordChanged { user }
        | Event::UserPasswordResetIssued { user, .. }
        | Event::UserPasswordReset { user }
        | Event::SessionRevoked { user, .. } => json!({ "user_id": user.id.0 }),
    }
}

/// What identifies a key, never its secret.
fn api_key(key: &ApiKey) -> Value {
    json!({
        "id": key.id.0,
        "name": key.name.as_str(),
        "environment": key.environment.as_str(),
        "scope_level": key.scope_level.as_str(),
        "scopes": key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "last4": key.last4,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
    })
}

fn connection(connection_id: Uuid, provider: &ProviderSlug, health: Option<&HealthCheck>) -> Value {
    let mut data = json!({ "connection_id": connection_id, "provider": provider.as_str() });
    if let Some(check) = health {
        data["health_check"] = json!({
            "outcome": check.outcome.as_str(),
            "detail": check.detail,
            "checked_at": check.checked_at,
        });
    }
    data
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use otesse_domain::api_key::{
        ApiKeyDescription, ApiKeyId, ApiKeyName, Environment, ExpiresIn, KeyHash, Scope, ScopeLevel,
    };
    use otesse_domain::event::AuditActor;
    use otesse_domain::integration::HealthOutcome;
    use otesse_domain::organization::OrganizationId;
    use otesse_domain::user::UserId;

    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn body(event: Event) -> Option<Value> {
        let event = DomainEvent::new(OrganizationId(Uuid::from_u128(1)), AuditActor::System, at(), event);
        webhook_body(&event).map(|text| {
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["id"], event.message_id());
            assert_eq!(body["type"], event.kind().as_str());
            assert_eq!(body["timestamp"], "2027-01-15T08:00:00.000Z");
            body
        })
    }

    fn key() -> ApiKey {
        ApiKey {
            id: ApiKeyId(Uuid::from_u128(9)),
            organization_id: OrganizationId(Uuid::from_u128(1)),
            name: ApiKeyName::parse("Zapier").unwrap(),
            description: ApiKeyDescription::default(),
            environment: Environment::Live,
            scope_level: ScopeLevel::ReadWrite,
            scopes: vec![Scope::CustomersRead],
            expires_in: ExpiresIn::Days90,
            allowed_ips: vec![],
            key_hash: KeyHash([0xab; 32]),
            last4: "s9t0".into(),
            created_by: UserId(Uuid::from_u128(2)),
            created_at: at(),
            expires_at: Some(at()),
            revoked_at: None,
            rotated_from: None,
            last_used_at: None,
        }
    }

    #[test]
    fn a_key_event_holds_what_identifies_the_key_and_never_its_hash() {
        let body = body(Event::ApiKeyExpiring { key: key(), days_left: 7 }).unwrap();
        assert_eq!(
            body["data"],
            json!({
                "id": Uuid::from_u128(9),
                "name": "Zapier",
                "environment": "live",
                "scope_level": "read_write",
                "scopes": ["customers.read"],
                "last4": "s9t0",
                "expires_at": at(),
                "revoked_at": null,
                "days_left": 7,
            })
        );
        assert!(!body.to_string().to_lowercase().contains(&"ab".repeat(8)), "the hash stays home");
    }

    #[test]
    fn connection_events_hold_the_check_and_audited_only_kinds_are_not_delivered() {
        let check = HealthCheck {
            id: Uuid::from_u128(5),
            connection_id: Uuid::from_u128(4),
            outcome: HealthOutcome::Unreachable,
            response_time_ms: 10_000,
            detail: "timed out".into(),
            checked_at: at(),
        };
        let provider = ProviderSlug::parse("postmark").unwrap();
        let failed =
            body(Event::HealthCheckFailed { connection_id: Uuid::from_u128(4), provider: provider.clone(), check })
                .unwrap();
        assert_eq!(failed["data"]["connection_id"], json!(Uuid::from_u128(4)));
        assert_eq!(failed["data"]["provider"], "postmark");
        assert_eq!(failed["data"]["health_check"]["outcome"], "unreachable");
        let gone =
            body(Event::IntegrationDisconnected { connection_id: Uuid::from_u128(4), provider: provider.clone() })
                .unwrap();
        assert_eq!(gone["data"], json!({"connection_id": Uuid::from_u128(4), "provider": "postmark"}));
        let updated = Event::IntegrationUpdated {
            connection_id: Uuid::from_u128(4),
            provider,
            change: "model".into(),
            value: "x".into(),
        };
        assert_eq!(body(updated), None);
        let test = body(Event::WebhookTest { endpoint_id: Uuid::from_u128(3) }).unwrap();
        assert_eq!(test["data"]["endpoint_id"], json!(Uuid::from_u128(3)));
    }
}
