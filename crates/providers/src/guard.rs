//! The SSRF guard (W5) for URLs that users configure (outbound webhook endpoints, resource URLs).
//!
//! A URL is refused when its host is, or resolves to, an address that reaches inside the
//! deployment: loopback, private (RFC 1918), carrier-grade NAT, link-local (including the cloud
//! metadata address 169.254.169.254), unique-local IPv6, unspecified, multicast, broadcast,
//! reserved, and those same addresses wrapped in IPv6 (`::ffff:10.0.0.1`, NAT64 `64:ff9b::/96`,
//! 6to4 `2002::/16`). [`check_url`] runs when a URL is saved; [`guarded_client`] checks again
//! at every connection, on the addresses actually dialled (DNS can change between the two: a
//! rebinding attack), and never follows redirects. `allow_loopback` (the
//! `OTESSE_ALLOW_LOOPBACK_URLS` setting, for development and tests) lets loopback through and
//! nothing else. Provider base URLs come from the deployment's own configuration, which is
//! trusted, and are not guarded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// Let loopback addresses through (development and tests only).
    pub allow_loopback: bool,
    /// Refuse plain `http` (production).
    pub require_https: bool,
}

/// Why a URL is refused. The messages are shown to the user who configured it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("the URL could not be parsed")]
    Unparsable,
    #[error("the URL must be at most 2048 characters")]
    TooLong,
    #[error("the URL must use https")]
    HttpsRequired,
    #[error("the URL must use http or https")]
    UnsupportedScheme,
    #[error("URLs with a user name or password are not allowed")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL's host could not be resolved")]
    Unresolvable,
    #[error("the URL's host resolves to a private or internal address ({0}), which cannot be reached")]
    Forbidden(IpAddr),
}

/// Whether `ip` reaches something internal under `policy`.
pub fn is_forbidden(ip: IpAddr, policy: UrlPolicy) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4, policy),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return v4_forbidden(v4, policy);
            }
            if v6.is_loopback() {
                return !policy.allow_loopback;
            }
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || first == 0x0100 && v6.segments()[1..4] == [0, 0, 0] // discard-only 100::/64
        }
    }
}

fn v4_forbidden(ip: Ipv4Addr, policy: UrlPolicy) -> bool {
    if ip.is_loopback() {
        return !policy.allow_loopback;
    }
    let [a, b, _, _] = ip.octets();
    ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network" 0.0.0.0/8
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240 // reserved 240.0.0.0/4
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96)
/// or 6to4 (2002::/16).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let tail = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        // IPv4-compatible ::a.b.c.d (not :: or ::1, which are IPv6's own).
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(tail(hi, lo)),
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(tail(hi, lo)),
        [0x2002, hi, lo, ..] => Some(tail(hi, lo)),
        _ => None,
    }
}

/// Parses and checks a URL a user wants Otesse to call, resolving its host: refused if any of
/// its addresses is forbidden.
pub async fn check_url(raw: &str, policy: UrlPolicy) -> Result<Url, UrlRefused> {
    if raw.len() > 2048 {
        return Err(UrlRefused::TooLong);
    }
    let url = Url::parse(raw).map_err(|_| UrlRefused::Unparsable)?;
    match url.scheme() {
        "https" => {}
        "http" if !policy.require_https => {}
        "http" => return Err(UrlRefused::HttpsRequired),
        _ => return Err(UrlRefused::UnsupportedScheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefused::Credentials);
    }
    let host = url.host().ok_or(UrlRefused::NoHost)?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| UrlRefused::Unresolvable)?
            .map(|addr| addr.ip())
            .collect(),
    };
    if addresses.is_empty() {
        return Err(UrlRefused::Unresolvable);
    }
    if let Some(ip) = addresses.into_iter().find(|ip| is_forbidden(*ip, policy)) {
        return Err(UrlRefused::Forbidden(ip));
    }
    Ok(url)
}

/// Resolves with the system resolver, then drops forbidden addresses; no address left is an
/// error. reqwest asks it for every new connection, so a host that changed its DNS since it was
/// saved is caught here.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    policy: UrlPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|addr| !is_forbidden(addr.ip(), policy)).collect();
            if allowed.is_empty() {
                return Err(Box::new(UrlRefused::Forbidden(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client for user-configured URLs: bounded timeouts, no redirects, and the guard at
/// every connection. Use [`GuardedClient::send`], which also checks IP-literal hosts (reqwest
/// does not resolve those).
#[derive(Debug, Clone)]
pub struct GuardedClient {
    client: reqwest::Client,
    policy: UrlPolicy,
}

impl GuardedClient {
    pub fn new(policy: UrlPolicy, connect_timeout: Duration, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .user_agent(concat!("otesse-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, policy })
    }

    /// A request builder on the guarded client.
    pub fn post(&self, url: Url) -> reqwest::RequestBuilder {
        self.client.post(url)
    }

    /// Sends `request` unless its host is a forbidden IP literal; redirects come back as they
    /// are (3xx), never followed.
    pub async fn send(&self, request: reqwest::Request) -> Result<reqwest::Response, GuardError> {
        let literal = match request.url().host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| is_forbidden(*ip, self.policy)) {
            return Err(GuardError::Refused(UrlRefused::Forbidden(ip)));
        }
        self.client.execute(request).await.map_err(|err| {
            let refused = std::error::Error::source(&err)
                .into_iter()
                .flat_map(|e| std::iter::successors(Some(e), |e| e.source()))
                .any(|e| e.downcast_ref::<UrlRefused>().is_some());
            if refused {
                GuardError::Refused(UrlRefused::Forbidden(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
            } else {
                GuardError::Http(err)
            }
        })
    }
}

/// A guarded send that did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("refused: {0}")]
    Refused(UrlRefused),
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy { allow_loopback: false, require_https: false };
    const LOOPBACK_OK: UrlPolicy = UrlPolicy { allow_loopback: true, require_https: false };

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_forbidden_and_public_ones_are_not() {
        let forbidden = [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001:db8::1",
        ];
        for raw in forbidden {
            assert!(is_forbidden(ip(raw), STRICT), "{raw} should be forbidden");
        }
        for raw in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_forbidden(ip(raw), STRICT), "{raw} should be allowed");
        }
    }

    #[test]
    fn allowing_loopback_allows_nothing_else() {
        for raw in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(!is_forbidden(ip(raw), LOOPBACK_OK), "{raw}");
        }
        for raw in ["10.0.0.1", "169.254.169.254", "fd00::1", "192.168.0.1"] {
            assert!(is_forbidden(ip(raw), LOOPBACK_OK), "{raw}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_on_scheme_credentials_and_resolved_addresses() {
        async fn refused(raw: &str, policy: UrlPolicy) -> UrlRefused {
            check_url(raw, policy).await.unwrap_err()
        }
        assert_eq!(refused("http://127.0.0.1:8080/hook", STRICT).await, UrlRefused::Forbidden(ip("127.0.0.1")));
        assert!(matches!(refused("http://localhost/hook", STRICT).await, UrlRefused::Forbidden(_)));
        assert_eq!(refused("http://[::1]/", STRICT).await, UrlRefused::Forbidden(ip("::1")));
        assert_eq!(
            refused("http://169.254.169.254/latest/meta-data", LOOPBACK_OK).await,
            UrlRefused::Forbidden(ip("169.254.169.254"))
        );
        assert_eq!(refused("http://10.0.0.1/", LOOPBACK_OK).await, UrlRefused::Forbidden(ip("10.0.0.1")));
        assert_eq!(refused("https://user:pass@example.com/", STRICT).await, UrlRefused::Credentials);
        assert_eq!(refused("ftp://example.com/", STRICT).await, UrlRefused::UnsupportedScheme);
        assert_eq!(refused("not a url", STRICT).await, UrlRefused::Unparsable);
        let production = UrlPolicy { allow_loopback: false, require_https: true };
        assert_eq!(refused("http://93.184.216.34/", production).await, UrlRefused::HttpsRequired);
        assert_eq!(check_url(&format!("https://a.test/{}", "x".repeat(2048)), STRICT).await, Err(UrlRefused::TooLong));
        assert!(check_url("http://127.0.0.1:8080/hook", LOOPBACK_OK).await.is_ok());
        assert!(check_url("https://93.184.216.34/hook", production).await.is_ok(), "IP literals need no DNS");
    }
}
