//! The SSRF guard's DNS-free part (`parse_url`, `check_shape`) on arbitrary URLs, and
//! `is_forbidden` on arbitrary IPv4 and IPv6 addresses. Nothing here resolves a name.
//!
//! Input: 30 bytes of addresses (an IPv4 address, an IPv6 address, and the 80 bits a 6to4
//! address carries after its IPv4 one), then the URL as text. Every policy is checked.
//!
//! Properties: an accepted URL is http(s) (https under `require_https`), carries no
//! credentials, fits `MAX_URL_LEN`, and names either an allowed IP literal or a non-empty host
//! name that is no IP literal in disguise; a refusal naming an address names a forbidden one;
//! checking an accepted URL's own text again gives the same answer (what is stored is what is
//! checked at send time); loosening the policy never refuses more. Every IPv4-mapped,
//! IPv4-compatible, SIIT, NAT64 and 6to4 wrapping of a forbidden IPv4 address is forbidden too;
//! IPv6 outside 2000::/3 is allowed only when it hands an allowed IPv4 address to this host
//! (IPv4-mapped) or to a translator (SIIT, NAT64); allowing loopback allows loopback and
//! nothing else.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use otesse_providers::guard::{MAX_URL_LEN, Target, UrlPolicy, UrlRefused, check_shape, is_forbidden, parse_url};

const POLICIES: [UrlPolicy; 4] = [
    UrlPolicy { allow_loopback: false, require_https: true },
    UrlPolicy { allow_loopback: false, require_https: false },
    UrlPolicy { allow_loopback: true, require_https: true },
    UrlPolicy { allow_loopback: true, require_https: false },
];

fn looser(a: UrlPolicy, b: UrlPolicy) -> bool {
    (b.allow_loopback || !a.allow_loopback) && (a.require_https || !b.require_https)
}

/// The DNS-free verdict as text, comparable across two parses of the same URL.
fn verdict(raw: &str, policy: UrlPolicy) -> Result<String, UrlRefused> {
    let url = parse_url(raw)?;
    let target = check_shape(&url, policy)?;
    Ok(format!("{target:?} {url}"))
}

fn check_url(raw: &str, policy: UrlPolicy) {
    let Ok(url) = parse_url(raw) else { return };
    match check_shape(&url, policy) {
        Ok(target) => {
            assert!(url.scheme() == "https" || (url.scheme() == "http" && !policy.require_https), "{url}");
            assert!(url.username().is_empty() && url.password().is_none(), "{url}");
            assert!(url.as_str().len() <= MAX_URL_LEN);
            match target {
                Target::Literal(ip) => assert!(!is_forbidden(ip, policy), "{url} reaches {ip}"),
                Target::Name(name) => {
                    assert!(!name.is_empty(), "{url}");
                    let bare = name.trim_start_matches('[').trim_end_matches(']');
                    assert!(bare.parse::<IpAddr>().is_err(), "{url}: the IP literal {name} passed as a name");
                }
            }
            // What is stored (the URL's text) is what the client checks again before sending.
            let stored = format!("{target:?} {url}");
            assert_eq!(verdict(url.as_str(), policy), Ok(stored), "{raw:?} stored as {url}");
        }
        Err(UrlRefused::Forbidden(ip)) => assert!(is_forbidden(ip, policy), "{raw:?} refused for {ip}"),
        Err(UrlRefused::Unparsable | UrlRefused::Unresolvable) => panic!("{raw:?}: parsed, then unparsable"),
        Err(_) => {}
    }
}

fn check_v4(v4: Ipv4Addr, rest: [u8; 10]) {
    let [a, b, c, d] = v4.octets();
    let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
    let wrappings = [
        ("IPv4-mapped", v4.to_ipv6_mapped()),
        ("IPv4-compatible", Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo)),
        ("SIIT", Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo)),
        ("NAT64", Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo)),
        (
            "6to4",
            Ipv6Addr::new(
                0x2002,
                hi,
                lo,
                u16::from_be_bytes([rest[0], rest[1]]),
                u16::from_be_bytes([rest[2], rest[3]]),
                u16::from_be_bytes([rest[4], rest[5]]),
                u16::from_be_bytes([rest[6], rest[7]]),
                u16::from_be_bytes([rest[8], rest[9]]),
            ),
        ),
    ];
    for policy in POLICIES {
        if !is_forbidden(IpAddr::V4(v4), policy) {
            continue;
        }
        for (kind, v6) in wrappings {
            // ::1 is the IPv4-compatible form of 0.0.0.1 but first of all IPv6 loopback, which
            // allow_loopback lets through like 127.0.0.1.
            if v6.is_loopback() && policy.allow_loopback {
                continue;
            }
            assert!(is_forbidden(IpAddr::V6(v6), policy), "{kind} {v6} of forbidden {v4} is allowed ({policy:?})");
        }
    }
    // The IPv4-mapped form is the address itself, allowed or not.
    for policy in POLICIES {
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        assert_eq!(is_forbidden(mapped, policy), is_forbidden(IpAddr::V4(v4), policy), "{mapped} ({policy:?})");
    }
}

fn check_v6(v6: Ipv6Addr) {
    for policy in POLICIES {
        if is_forbidden(IpAddr::V6(v6), policy) {
            continue;
        }
        let global_unicast = v6.segments()[0] & 0xe000 == 0x2000;
        let allowed_v4 = |v4: Ipv4Addr, policy| !is_forbidden(IpAddr::V4(v4), policy);
        let mapped = v6.to_ipv4_mapped().is_some_and(|v4| allowed_v4(v4, policy));
        // A translator's IPv4 address is never this host's loopback.
        let strict = UrlPolicy { allow_loopback: false, ..policy };
        let translated = match v6.segments() {
            [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] | [0, 0, 0, 0, 0xffff, 0, hi, lo] => {
                allowed_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)), strict)
            }
            _ => false,
        };
        let loopback = v6.is_loopback() && policy.allow_loopback;
        assert!(global_unicast || mapped || translated || loopback, "{v6} allowed ({policy:?})");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut addresses = [0u8; 30];
    let split = data.len().min(addresses.len());
    addresses[..split].copy_from_slice(&data[..split]);
    let v4: [u8; 4] = addresses[..4].try_into().expect("4 bytes");
    let v6: [u8; 16] = addresses[4..20].try_into().expect("16 bytes");
    let rest: [u8; 10] = addresses[20..].try_into().expect("10 bytes");
    let (v4, v6) = (Ipv4Addr::from(v4), Ipv6Addr::from(v6));

    if let Ok(url) = std::str::from_utf8(&data[split..]) {
        for policy in POLICIES {
            check_url(url, policy);
            // Loosening the policy never refuses more.
            if verdict(url, policy).is_ok() {
                for looser_policy in POLICIES.into_iter().filter(|p| looser(policy, *p)) {
                    assert!(verdict(url, looser_policy).is_ok(), "{url:?} refused under {looser_policy:?}");
                }
            }
        }
    }
    for ip in [IpAddr::V4(v4), IpAddr::V6(v6)] {
        for policy in POLICIES {
            let strict = is_forbidden(ip, UrlPolicy { allow_loopback: false, ..policy });
            let loose = is_forbidden(ip, UrlPolicy { allow_loopback: true, ..policy });
            if strict != loose {
                let loopback = match ip {
                    IpAddr::V4(v4) => v4.is_loopback(),
                    IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
                };
                assert!(strict && loopback, "{ip}: forbidden {strict} strictly, {loose} with loopback allowed");
            }
        }
    }
    check_v4(v4, rest);
    check_v6(v6);
});
