//! The dashboard's static files, compiled into the binary (D1: no Node toolchain, no CDN, no
//! network at run time).
//!
//! Every file under `apps/server/dashboard/` is listed once in [`FILES`] (a test checks the list
//! against the directory). They are served at `/assets/<version>/<path>` with a year-long
//! `immutable` cache, where `<version>` is a hash of all of them: a new build changes every URL
//! the shell hands out, so a browser never mixes old and new modules. The ES modules import each
//! other with relative paths, so they stay under the same version. A path without the current
//! version (the catalog's logo URLs, an old page still open after an upgrade) is served too, with
//! `no-cache` and an `ETag`.

use std::sync::OnceLock;

/// One compiled-in file.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $kind:literal),* $(,)?) => {
        &[$(Asset {
            path: $path,
            content_type: $kind,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard/", $path)),
        }),*]
    };
}

/// Every file of `apps/server/dashboard/`.
pub static FILES: &[Asset] = assets![
    "app.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/app.js" => "text/javascript; charset=utf-8",
    "js/dom.js" => "text/javascript; charset=utf-8",
    "js/format.js" => "text/javascript; charset=utf-8",
    "js/signin.js" => "text/javascript; charset=utf-8",
    "js/ui.js" => "text/javascript; charset=utf-8",
    "js/pages/account.js" => "text/javascript; charset=utf-8",
    "js/pages/audit.js" => "text/javascript; charset=utf-8",
    "js/pages/catalog.js" => "text/javascript; charset=utf-8",
    "js/pages/connections.js" => "text/javascript; charset=utf-8",
    "js/pages/key_detail.js" => "text/javascript; charset=utf-8",
    "js/pages/keys.js" => "text/javascript; charset=utf-8",
    "js/pages/notifications.js" => "text/javascript; charset=utf-8",
    "js/pages/users.js" => "text/javascript; charset=utf-8",
    "js/pages/webhooks.js" => "text/javascript; charset=utf-8",
    "logos/anthropic.svg" => "image/svg+xml",
    "logos/geoapify.svg" => "image/svg+xml",
    "logos/google_maps.svg" => "image/svg+xml",
    "logos/mapbox.svg" => "image/svg+xml",
    "logos/postmark.svg" => "image/svg+xml",
    "logos/provider.svg" => "image/svg+xml",
    "logos/quo.svg" => "image/svg+xml",
    "logos/stripe.svg" => "image/svg+xml",
    "logos/xero.svg" => "image/svg+xml",
];

struct Table {
    version: String,
    etags: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut all = Vec::new();
        let etags = FILES
            .iter()
            .map(|asset| {
                let digest = otesse_crypto::sha256(asset.bytes);
                all.extend_from_slice(asset.path.as_bytes());
                all.push(0);
                all.extend_from_slice(&digest);
                format!("\"{}\"", &hex(&digest)[..16])
            })
            .collect();
        Table { version: hex(&otesse_crypto::sha256(&all))[..12].to_owned(), etags }
    })
}

/// The hash of every asset: the `<version>` segment of asset URLs.
pub fn version() -> &'static str {
    &table().version
}

/// The URL of an asset under the current version.
pub fn url(path: &str) -> String {
    format!("/assets/{}/{path}", version())
}

/// What `/assets/<tail>` serves: the asset, its ETag, and whether the URL carried the current
/// version (and so may be cached for good).
pub fn lookup(tail: &str) -> Option<(&'static Asset, &'static str, bool)> {
    let (path, versioned) = match tail.split_once('/') {
        Some((first, rest)) if first == version() => (rest, true),
        // Another build's version: the page that asks is older than this server.
        Some((first, rest)) if first.len() == 12 && first.bytes().all(|b| b.is_ascii_hexdigit()) => (rest, false),
        _ => (tail, false),
    };
    let index = FILES.iter().position(|asset| asset.path == path)?;
    Some((&FILES[index], table().etags[index].as_str(), versioned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_on_disk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                files_on_disk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }

    #[test]
    fn every_file_of_the_dashboard_directory_is_compiled_in_once() {
        let mut on_disk = Vec::new();
        files_on_disk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard"), "", &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|a| a.path.to_owned()).collect();
        listed.sort();
        assert_eq!(listed, on_disk, "FILES in dashboard/assets.rs must list apps/server/dashboard/ exactly");
        for asset in FILES {
            let expected = match asset.path.rsplit_once('.').map(|(_, ext)| ext) {
                Some("js") => "text/javascript; charset=utf-8",
                Some("svg") => "image/svg+xml",
                Some("css") => "text/css; charset=utf-8",
                other => panic!("no content type for {other:?}"),
            };
            assert_eq!(asset.content_type, expected, "{}", asset.path);
        }
    }

    #[test]
    fn versioned_and_plain_paths_find_the_same_file() {
        let (asset, etag, versioned) = lookup(&format!("{}/js/app.js", version())).unwrap();
        assert!(versioned);
        assert_eq!(asset.path, "js/app.js");
        let (plain, plain_etag, versioned) = lookup("js/app.js").unwrap();
        assert!(!versioned);
        assert_eq!((plain.path, plain_etag), (asset.path, etag));
        assert!(lookup("js/../app.css").is_none());
        let (old, _, versioned) = lookup("0123456789ab/js/app.js").unwrap();
        assert!(!versioned && old.path == "js/app.js", "another build's URL is served, not cached for good");
        assert!(lookup("nothing.js").is_none());
        assert_eq!(url("app.css"), format!("/assets/{}/app.css", version()));
    }

    /// The dashboard builds its pages with DOM calls and `textContent` only: data from the API
    /// never reaches an HTML parser, so a name like `<img onerror=...>` stays text.
    #[test]
    fn scripts_never_parse_html_or_evaluate_strings() {
        for asset in FILES.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
                assert!(!text.contains(banned), "{} uses {banned}", asset.path);
            }
            assert!(!text.contains(".style."), "{}: no inline styles (the CSP forbids them)", asset.path);
        }
    }
}
