//! The SSRF guard (W5) for URLs that users configure (outbound webhook endpoints, resource URLs).
//!
//! A URL is refused when its host is, or resolves to, an address that reaches inside the
//! deployment: loopback, private (RFC 1918), carrier-grade NAT, link-local (including the cloud
//! metadata address 169.254.169.254), unique-local IPv6, unspecified, multicast, broadcast,
//! reserved and documentation ranges, and those same addresses wrapped in IPv6
//! (`::ffff:10.0.0.1`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`). IPv6 outside global unicast
//! (`2000::/3`) is refused whole. Only http(s) is accepted (https only under `require_https`),
//! never with credentials, never over [`MAX_URL_LEN`] characters.
//!
//! [`check_url`] runs when a URL is saved; its DNS-free part is [`parse_url`] then
//! [`check_shape`], pure functions (the fuzz target `url_guard` drives them and
//! [`is_forbidden`]). [`GuardedClient`] checks again when it is called: the
//! URL's shape and an IP-literal host before sending, and a host name in a resolver that drops
//! forbidden addresses, so the addresses actually dialled are the ones checked (DNS can change
//! after the URL was saved: a rebinding attack). It never follows redirects and ignores the
//! system's proxy settings (through a proxy, the guard would check the proxy, not the target).
//!
//! `allow_loopback` (the `OTESSE_ALLOW_LOOPBACK_URLS` setting, for development and tests) lets
//! loopback through and nothing else. Provider base URLs come from the deployment's own
//! configuration, which is trusted, and are not guarded.

use std::error::Error as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;
use reqwest::{Body, Method, Request, Response, Url};

/// The longest URL accepted, in bytes of its text (as given, and once normalised).
pub const MAX_URL_LEN: usize = 2048;

/// The longest [`check_url`] waits for a host name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a user-configured URL may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// Let loopback addresses through, and nothing else (development and tests only).
    pub allow_loopback: bool,
    /// Refuse plain `http` (production).
    pub require_https: bool,
}

impl UrlPolicy {
    /// Production: https only, no loopback.
    pub const PRODUCTION: UrlPolicy = UrlPolicy { allow_loopback: false, require_https: true };
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
    #[error("URLs with credentials (user:pass@) are not allowed")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL's host could not be resolved")]
    Unresolvable,
    /// The host is, or resolves to, this address. The message does not name it: a refusal
    /// must not tell a caller what a name resolves to inside the network.
    #[error("the URL's host is or resolves to a private or internal address, which cannot be reached")]
    Forbidden(IpAddr),
}

/// Whether `ip` reaches something internal under `policy`.
pub fn is_forbidden(ip: IpAddr, policy: UrlPolicy) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4, policy),
        IpAddr::V6(v6) => v6_forbidden(v6, policy),
    }
}

fn v4_forbidden(ip: Ipv4Addr, policy: UrlPolicy) -> bool {
    if ip.is_loopback() {
        return !policy.allow_loopback;
    }
    let [a, b, c, _] = ip.octets();
    ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network" 0.0.0.0/8, unspecified included
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240 // reserved 240.0.0.0/4
}

fn v6_forbidden(ip: Ipv6Addr, policy: UrlPolicy) -> bool {
    if ip.is_loopback() {
        return !policy.allow_loopback;
    }
    // A dual-stack socket dialling ::ffff:a.b.c.d reaches a.b.c.d itself, loopback included.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_forbidden(v4, policy);
    }
    // Through a translator or tunnel an embedded address is never this host's loopback.
    if let Some(v4) = translated_v4(ip) {
        return v4_forbidden(v4, UrlPolicy { allow_loopback: false, ..policy });
    }
    // Outside global unicast 2000::/3 lie unspecified and IPv4-compatible (::/96), local-use
    // NAT64 (64:ff9b:1::/48), discard (100::/64), unique-local (fc00::/7), link-local (fe80::/10),
    // site-local (fec0::/10), multicast (ff00::/8) and unallocated space: none is a webhook.
    let [s0, s1, ..] = ip.segments();
    (s0 & 0xe000) != 0x2000
        || (s0 == 0x2001 && s1 < 0x0200) // IETF protocol assignments 2001::/23 (Teredo included)
        || (s0 == 0x2001 && s1 == 0x0db8) // documentation 2001:db8::/32
        || (s0 & 0xfff0) == 0x3ff0 // documentation 3fff::/20
}

/// The IPv4 address an IPv6 address hands to a translator: NAT64 well-known prefix
/// (64:ff9b::/96), SIIT IPv4-translated (::ffff:0:0:0/96) and 6to4 (2002::/16).
fn translated_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match ip.segments() {
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] | [0, 0, 0, 0, 0xffff, 0, hi, lo] | [0x2002, hi, lo, ..] => {
            Some(v4(hi, lo))
        }
        _ => None,
    }
}

/// Parses and checks a URL a user wants Otesse to call, resolving its host name: refused if any
/// of its addresses is forbidden. Store the returned URL's text, not the raw input.
pub async fn check_url(raw: &str, policy: UrlPolicy) -> Result<Url, UrlRefused> {
    let url = parse_url(raw)?;
    let addresses: Vec<IpAddr> = match check_shape(&url, policy)? {
        Target::Literal(ip) => vec![ip],
        Target::Name(name) => {
            let port = url.port_or_known_default().unwrap_or(443);
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| UrlRefused::Unresolvable)?
                .map_err(|_| UrlRefused::Unresolvable)?
                .map(|addr| addr.ip())
                .collect()
        }
    };
    if addresses.is_empty() {
        return Err(UrlRefused::Unresolvable);
    }
    match addresses.into_iter().find(|ip| is_forbidden(*ip, policy)) {
        Some(ip) => Err(UrlRefused::Forbidden(ip)),
        None => Ok(url),
    }
}

/// The text of a URL a user gave, parsed: [`UrlRefused::TooLong`] or [`UrlRefused::Unparsable`]
/// otherwise. No check of what it points at: that is [`check_shape`]'s.
pub fn parse_url(raw: &str) -> Result<Url, UrlRefused> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlRefused::TooLong);
    }
    Url::parse(raw).map_err(|_| UrlRefused::Unparsable)
}

/// A URL's host, once its shape has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// An IP-literal host, already found allowed.
    Literal(IpAddr),
    /// A host name: its addresses still have to be resolved and checked.
    Name(&'a str),
}

/// Everything [`check_url`] checks but resolution, with no I/O: length, scheme, credentials,
/// and an IP-literal host. [`GuardedClient`] runs it again before every request.
pub fn check_shape(url: &Url, policy: UrlPolicy) -> Result<Target<'_>, UrlRefused> {
    if url.as_str().len() > MAX_URL_LEN {
        return Err(UrlRefused::TooLong);
    }
    match url.scheme() {
        "https" => {}
        "http" if policy.require_https => return Err(UrlRefused::HttpsRequired),
        "http" => {}
        _ => return Err(UrlRefused::UnsupportedScheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefused::Credentials);
    }
    // The url crate has already normalised `0x7f.1`, `2130706433` and the like to 127.0.0.1.
    let ip = match url.host().ok_or(UrlRefused::NoHost)? {
        url::Host::Domain("") => return Err(UrlRefused::NoHost),
        url::Host::Domain(name) => return Ok(Target::Name(name)),
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
    };
    if is_forbidden(ip, policy) {
        return Err(UrlRefused::Forbidden(ip));
    }
    Ok(Target::Literal(ip))
}

/// Resolves with the system resolver, then drops forbidden addresses; none left is a
/// [`UrlRefused::Forbidden`] naming the first one. reqwest asks it for every new connection (it
/// does not for IP literals, which [`GuardedClient::execute`] checks itself).
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    policy: UrlPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let (allowed, forbidden): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|addr| !is_forbidden(addr.ip(), policy));
            // The refusal is boxed as itself (not as a `Box<UrlRefused>`) so that it can be
            // downcast from reqwest's error chain.
            match forbidden.first() {
                Some(first) if allowed.is_empty() => Err(UrlRefused::Forbidden(first.ip()).into()),
                _ if allowed.is_empty() => Err(std::io::Error::other("the host has no address").into()),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// An HTTP client for user-configured URLs: bounded timeouts, no redirects (a 3xx comes back as
/// the response), no proxy, and the guard on every request and every connection.
///
/// There is deliberately no method handing out a `reqwest::RequestBuilder`: its own `send` would
/// skip the IP-literal check.
#[derive(Debug, Clone)]
pub struct GuardedClient {
    client: reqwest::Client,
    policy: UrlPolicy,
}

impl GuardedClient {
    /// `connect_timeout` bounds each TCP (and TLS) connection, `timeout` the whole exchange.
    pub fn new(policy: UrlPolicy, connect_timeout: Duration, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .user_agent(concat!("otesse-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, policy })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> UrlPolicy {
        self.policy
    }

    /// POSTs `body` with `headers` to `url`, guarded like [`GuardedClient::execute`].
    pub async fn post(&self, url: Url, headers: HeaderMap, body: impl Into<Body>) -> Result<Response, GuardError> {
        let mut request = Request::new(Method::POST, url);
        *request.headers_mut() = headers;
        *request.body_mut() = Some(body.into());
        self.execute(request).await
    }

    /// Sends `request` unless its URL is refused (shape or IP literal now, resolved addresses at
    /// connection time). A redirect comes back as it is, never followed.
    pub async fn execute(&self, request: Request) -> Result<Response, GuardError> {
        check_shape(request.url(), self.policy).map_err(GuardError::Refused)?;
        self.client.execute(request).await.map_err(|err| {
            // The resolver's refusal travels inside reqwest's error chain.
            let refused = std::iter::successors(err.source(), |e| (*e).source())
                .find_map(|e| e.downcast_ref::<UrlRefused>())
                .cloned();
            match refused {
                Some(refused) => GuardError::Refused(refused),
                // The URL may carry a secret (webhook URLs often do); errors never print it.
                None => GuardError::Http(err.without_url()),
            }
        })
    }
}

/// A guarded request that got no response.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The guard refused the URL or every address its host resolved to; nothing was sent.
    #[error("refused: {0}")]
    Refused(UrlRefused),
    /// An ordinary failure (DNS, connection, TLS, timeout). Its text never holds the URL.
    #[error("the request failed: {0}")]
    Http(#[source] reqwest::Error),
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
    fn internal_addresses_are_forbidden() {
        let forbidden = [
            // IPv4
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            // IPv6
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "64:ff9b:1::a00:1",
            "5::1",
            // IPv4 wrapped in IPv6
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::ffff:0:10.0.0.1",
            "::10.0.0.1",
            "::8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "2002:a00:1::",
            "2002:c0a8:101::1",
        ];
        for raw in forbidden {
            assert!(is_forbidden(ip(raw), STRICT), "{raw} should be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        let public = [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for raw in public {
            assert!(!is_forbidden(ip(raw), STRICT), "{raw} should be allowed");
            assert!(!is_forbidden(ip(raw), LOOPBACK_OK), "{raw} should be allowed");
        }
    }

    #[test]
    fn allowing_loopback_allows_nothing_else() {
        for raw in ["127.0.0.1", "127.255.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(!is_forbidden(ip(raw), LOOPBACK_OK), "{raw} should be allowed");
        }
        let still = [
            "10.0.0.1",
            "169.254.169.254",
            "192.168.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            // Through a translator, an embedded 127.0.0.1 is not this host.
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
        ];
        for raw in still {
            assert!(is_forbidden(ip(raw), LOOPBACK_OK), "{raw} should be forbidden");
        }
    }

    async fn refused(raw: &str, policy: UrlPolicy) -> UrlRefused {
        check_url(raw, policy).await.expect_err(raw)
    }

    #[tokio::test]
    async fn internal_hosts_are_refused() {
        let cases = [
            ("http://127.0.0.1:8080/hook", "127.0.0.1"),
            ("http://[::1]/", "::1"),
            ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("http://10.0.0.1/", "10.0.0.1"),
            ("http://192.168.1.20:3000/", "192.168.1.20"),
            ("http://0.0.0.0/", "0.0.0.0"),
            ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
            ("http://[::ffff:a00:1]/", "::ffff:10.0.0.1"),
            ("http://[fe80::1]/", "fe80::1"),
            // Spellings the url crate normalises to 127.0.0.1.
            ("http://2130706433/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://017700000001/", "127.0.0.1"),
        ];
        for (raw, address) in cases {
            assert_eq!(refused(raw, STRICT).await, UrlRefused::Forbidden(ip(address)), "{raw}");
        }
        // `localhost` resolves locally (no DNS server involved).
        let by_name = refused("http://localhost:8080/hook", STRICT).await;
        assert!(matches!(by_name, UrlRefused::Forbidden(ip) if ip.is_loopback()), "{by_name:?}");
    }

    #[tokio::test]
    async fn loopback_can_be_allowed_and_nothing_else() {
        assert_eq!(
            check_url("http://127.0.0.1:8080/hook", LOOPBACK_OK).await.unwrap().as_str(),
            "http://127.0.0.1:8080/hook"
        );
        assert!(check_url("http://localhost:8080/hook", LOOPBACK_OK).await.is_ok());
        assert!(check_url("http://[::1]:8080/hook", LOOPBACK_OK).await.is_ok());
        for (raw, address) in [
            ("http://10.0.0.1/", "10.0.0.1"),
            ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("http://172.20.0.1/", "172.20.0.1"),
        ] {
            assert_eq!(refused(raw, LOOPBACK_OK).await, UrlRefused::Forbidden(ip(address)), "{raw}");
        }
    }

    #[tokio::test]
    async fn scheme_credentials_length_and_syntax_are_checked_before_resolving() {
        // None of these hosts is resolved: example.com would need a DNS server.
        assert_eq!(refused("https://user:pass@example.com/", STRICT).await, UrlRefused::Credentials);
        assert_eq!(refused("https://user@example.com/", STRICT).await, UrlRefused::Credentials);
        assert_eq!(refused("https://:pass@example.com/", STRICT).await, UrlRefused::Credentials);
        assert_eq!(refused("ftp://example.com/", STRICT).await, UrlRefused::UnsupportedScheme);
        assert_eq!(refused("file:///etc/passwd", STRICT).await, UrlRefused::UnsupportedScheme);
        assert_eq!(refused("gopher://example.com/", STRICT).await, UrlRefused::UnsupportedScheme);
        assert_eq!(refused("not a url", STRICT).await, UrlRefused::Unparsable);
        assert_eq!(refused("/relative/path", STRICT).await, UrlRefused::Unparsable);
        assert_eq!(refused("http://", STRICT).await, UrlRefused::Unparsable);
        assert_eq!(refused("http://exa mple.com/", STRICT).await, UrlRefused::Unparsable);
        let long = format!("https://example.com/{}", "x".repeat(MAX_URL_LEN));
        assert_eq!(refused(&long, STRICT).await, UrlRefused::TooLong);
        // Short as typed, too long once its spaces are percent-encoded.
        let grows = format!("https://example.com/{}x", " ".repeat(MAX_URL_LEN / 2));
        assert_eq!(refused(&grows, STRICT).await, UrlRefused::TooLong);
    }

    #[test]
    fn the_dns_free_check_tells_literals_from_names() {
        let shape =
            |raw: &str, policy| parse_url(raw).and_then(|url| check_shape(&url, policy).map(|t| format!("{t:?}")));
        assert_eq!(shape("https://example.com/hook", STRICT), Ok(r#"Name("example.com")"#.to_owned()));
        assert_eq!(shape("https://EXAMPLE.com./hook", STRICT), Ok(r#"Name("example.com.")"#.to_owned()));
        assert_eq!(shape("http://93.184.216.34/", STRICT), Ok("Literal(93.184.216.34)".to_owned()));
        assert_eq!(shape("http://[2606:4700::1111]/", STRICT), Ok("Literal(2606:4700::1111)".to_owned()));
        assert_eq!(shape("http://0x7f.1/", STRICT), Err(UrlRefused::Forbidden(ip("127.0.0.1"))));
        assert_eq!(shape("http://0x7f.1/", LOOPBACK_OK), Ok("Literal(127.0.0.1)".to_owned()));
        assert_eq!(shape("http://example.com/", UrlPolicy::PRODUCTION), Err(UrlRefused::HttpsRequired));
        assert_eq!(shape(&"x".repeat(MAX_URL_LEN + 1), STRICT), Err(UrlRefused::TooLong));
        assert_eq!(shape("http://", STRICT), Err(UrlRefused::Unparsable));
    }

    #[tokio::test]
    async fn production_requires_https() {
        assert_eq!(refused("http://93.184.216.34/", UrlPolicy::PRODUCTION).await, UrlRefused::HttpsRequired);
        assert_eq!(refused("http://example.com/", UrlPolicy::PRODUCTION).await, UrlRefused::HttpsRequired);
        assert!(
            check_url("https://93.184.216.34/hook", UrlPolicy::PRODUCTION).await.is_ok(),
            "IP literals need no DNS"
        );
        let development_https = UrlPolicy { allow_loopback: true, require_https: true };
        assert!(check_url("https://127.0.0.1:8443/hook", development_https).await.is_ok());
        assert_eq!(refused("http://127.0.0.1:8080/hook", development_https).await, UrlRefused::HttpsRequired);
    }

    #[tokio::test]
    async fn the_resolver_drops_forbidden_addresses_and_fails_when_none_remain() {
        let name = |raw: &str| raw.parse::<Name>().unwrap();
        let err = GuardedResolver { policy: STRICT }.resolve(name("localhost")).await.err().expect("refused");
        let refused = err.downcast_ref::<UrlRefused>().expect("a UrlRefused, not a network error");
        assert!(matches!(refused, UrlRefused::Forbidden(ip) if ip.is_loopback()), "{refused:?}");
        let addrs: Vec<SocketAddr> =
            GuardedResolver { policy: LOOPBACK_OK }.resolve(name("localhost")).await.expect("allowed").collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|addr| addr.ip().is_loopback()), "{addrs:?}");
    }
}
