//! `parse_allowed_ip` (IP allow-list entries: an address or a CIDR range) on arbitrary text.
//!
//! Properties: an accepted entry is a network named by its own first address (no host bits
//! set), it re-parses from its Display form (what is stored and shown) to the same network,
//! surrounding whitespace does not change it, and a key whose allow-list holds only that entry
//! admits the entry's first and last addresses (an IPv4-mapped one only from an entry that lies
//! within `::ffff:0:0/96`: such a request counts as IPv4).

#![no_main]

use std::net::IpAddr;

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
    // A request from an IPv4-mapped address counts as its IPv4 address, which only IPv4 entries
    // (mapped ones included, made IPv4 when parsed) hold: a wider IPv6 range such as `::/80`
    // makes no claim on it.
    let within_mapped = |net: ipnet::IpNet| match net {
        ipnet::IpNet::V6(v6) => v6.prefix_len() >= 96 && v6.network().to_ipv4_mapped().is_some(),
        ipnet::IpNet::V4(_) => true,
    };
    for ip in [net.network(), net.broadcast()] {
        let mapped = matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
        if !mapped || within_mapped(net) {
            assert!(key.allows_ip(Some(ip)), "an allow-list of {shown} refuses {ip}");
        }
    }
});
