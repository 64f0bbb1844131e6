//! `parse_allowed_ip` (IP allow-list entries: an address or a CIDR range) on arbitrary text.
//!
//! Properties: an accepted entry is a network named by its own first address (no host bits
//! set), it re-parses from its Display form (what is stored and shown) to the same network,
//! surrounding whitespace does not change it, and a key whose allow-list holds only that entry
//! admits the entry's first and last addresses.

#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use otesse_domain::api_key::{
    ApiKey, ApiKeyDescription, ApiKeyId, ApiKeyName, Environment, ExpiresIn, KeyHash, ScopeLevel, parse_allowed_ip,
};
use otesse_domain::organization::OrganizationId;
use otesse_domain::user::UserId;
use uuid::Uuid;

fn key_allowing(net: ipnet::IpNet) -> ApiKey {
    ApiKey {
        id: ApiKeyId(Uuid::nil()),
        organization_id: OrganizationId(Uuid::nil()),
        name: ApiKeyName::parse("fuzz").expect("a valid name"),
        description: ApiKeyDescription::parse("").expect("a valid description"),
        environment: Environment::Live,
        scope_level: ScopeLevel::ReadOnly,
        scopes: vec![],
        expires_in: ExpiresIn::Never,
        allowed_ips: vec![net],
        key_hash: KeyHash([0; 32]),
        last4: "abcd".into(),
        created_by: UserId(Uuid::nil()),
        created_at: DateTime::UNIX_EPOCH,
        expires_at: None,
        revoked_at: None,
        rotated_from: None,
        last_used_at: None,
    }
}

fuzz_target!(|raw: &str| {
    let Ok(net) = parse_allowed_ip(raw) else { return };
    assert_eq!(net.addr(), net.network(), "{raw:?} -> {net}");
    let shown = net.to_string();
    assert_eq!(parse_allowed_ip(&shown), Ok(net), "{raw:?} -> {shown:?}");
    assert_eq!(parse_allowed_ip(&format!(" {raw}\t")), Ok(net), "{raw:?}");
    let key = key_allowing(net);
    for ip in [net.network(), net.broadcast()] {
        assert!(key.allows_ip(Some(ip)), "an allow-list of {shown} refuses {ip}");
    }
});
