//! The dashboard in a real headless Chromium, driven through WebDriver (chromedriver) with
//! fantoccini. Each test starts its own chromedriver on a free port and its own browser with a
//! fresh profile, and always ends both, whether the test passes or panics.
//!
//! Without chromedriver these tests say they are skipped and pass, unless `CI` is set: then a
//! missing driver fails them (`.ci/run` installs `chromium` and `chromium-driver`).
//! `CHROMEDRIVER` and `CHROME_BIN` name other binaries than the ones found on `PATH`.

mod flows;
mod integrations;
mod keys;
mod oauth;
pub mod screenshots;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// How long a condition may take to come true in the page.
const DEADLINE: Duration = Duration::from_secs(20);

/// Browsers at once across the whole test binary: each is a few processes and the machine
/// running the suite may have two cores.
static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (375, 812);

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| PathBuf::from(dir).join(name)).find(|p| p.is_file())
}

fn chromedriver() -> Option<PathBuf> {
    std::env::var_os("CHROMEDRIVER").map(PathBuf::from).or_else(|| on_path("chromedriver"))
}

/// `Some(path)` when the browser tests can run; `None` (after saying so) when they are skipped.
fn driver_or_skip() -> Option<PathBuf> {
    match chromedriver() {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("chromedriver is not installed, and CI is set: install chromium and chromium-driver (.ci/run does)")
        }
        None => {
            eprintln!("browser test skipped: chromedriver is not on PATH (install chromium and chromium-driver)");
            None
        }
    }
}

/// chromedriver and the browser it started: ended on drop, by their own process ids.
struct Driver {
    child: Child,
    browser_pid: Option<u64>,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.browser_pid {
            // Normally gone already (the session was closed); after a failed close, chromedriver's
            // death alone would leave it running.
            let _ = Command::new("kill").arg(pid.to_string()).stderr(Stdio::null()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_driver(path: &PathBuf, size: (u32, u32)) -> (Driver, Client) {
    let profile = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", path.display()));
    let mut driver = Driver { child, browser_pid: None, _profile: profile };
    let status = format!("http://127.0.0.1:{port}/status");
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(answer) = http.get(&status).send().await
            && answer.status().is_success()
        {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "chromedriver did not answer at {status}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-extensions".to_owned(),
        "--hide-scrollbars".to_owned(),
        "--lang=en-US".to_owned(),
        format!("--user-data-dir={}", driver._profile.path().display()),
        format!("--window-size={},{}", size.0, size.1),
    ];
    args.push("--force-device-scale-factor=1".to_owned());
    let mut options = json!({"args": args, "prefs": {"intl.accept_languages": "en-US"}});
    if let Some(binary) = std::env::var_os("CHROME_BIN") {
        options["binary"] = json!(binary.to_string_lossy());
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), options);
    capabilities.insert("unhandledPromptBehavior".into(), json!("dismiss"));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("could not start a browser session: {e}"));
    driver.browser_pid = client.capabilities().and_then(|c| c.get("goog:processID")).and_then(Value::as_u64);
    (driver, client)
}

/// Runs `test` with a browser of `size` pointed at `app`; skips (see the module docs) without
/// chromedriver. The browser is closed whatever happens.
pub async fn with_browser<F, Fut>(app: &TestApp, size: (u32, u32), test: F)
where
    F: FnOnce(Page) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(path) = driver_or_skip() else { return };
    let _slot = SLOTS.acquire().await.unwrap();
    let (driver, client) = start_driver(&path, size).await;
    let page = Page { client: client.clone(), base: app.address.clone() };
    page.resize(size).await;
    let outcome = AssertUnwindSafe(test(page)).catch_unwind().await;
    let _ = client.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The page under test, with waits that poll for a condition until a deadline.
#[derive(Clone)]
pub struct Page {
    pub client: Client,
    pub base: String,
}

impl Page {
    pub async fn resize(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.unwrap();
        // The window includes no chrome in headless mode; make sure the layout width is exact.
        let inner = self.eval("return window.innerWidth").await;
        if inner.as_u64() != Some(u64::from(width)) {
            let outer = self.eval("return window.outerWidth").await.as_u64().unwrap_or(u64::from(width));
            let extra = outer.saturating_sub(inner.as_u64().unwrap_or(outer));
            self.client.set_window_size(width + extra as u32, height).await.unwrap();
        }
        let inner = self.eval("return window.innerWidth").await;
        assert_eq!(inner.as_u64(), Some(u64::from(width)), "the page is laid out {width} px wide");
    }

    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub async fn eval_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `probe` until it answers `Some`.
    pub async fn until<T, Fut: Future<Output = Option<T>>>(&self, what: &str, mut probe: impl FnMut() -> Fut) -> T {
        let started = Instant::now();
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if started.elapsed() > DEADLINE {
                let text = self.eval("return document.body ? document.body.innerText : ''").await;
                panic!(
                    "timed out waiting for {what}; the page at {} shows:\n{}",
                    self.path().await,
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first visible element matching `css`, once there is one.
    pub async fn find(&self, css: &str) -> Element {
        let client = self.client.clone();
        self.until(&format!("`{css}`"), || {
            let client = client.clone();
            async move {
                for element in client.find_all(Locator::Css(css)).await.ok()? {
                    if element.is_displayed().await.unwrap_or(false) {
                        return Some(element);
                    }
                }
                None
            }
        })
        .await
    }

    /// The first visible element matching `css` whose text contains `text`.
    pub async fn find_text(&self, css: &str, text: &str) -> Element {
        let client = self.client.clone();
        self.until(&format!("`{css}` with text {text:?}"), || {
            let client = client.clone();
            async move {
                for element in client.find_all(Locator::Css(css)).await.ok()? {
                    if element.is_displayed().await.unwrap_or(false)
                        && element.text().await.unwrap_or_default().contains(text)
                    {
                        return Some(element);
                    }
                }
                None
            }
        })
        .await
    }

    /// Clicks the first visible `css`. A page that re-draws between finding and clicking
    /// (a stale element) is found again.
    pub async fn click(&self, css: &str) {
        self.until(&format!("a click on `{css}`"), || async { self.find(css).await.click().await.ok() }).await;
    }

    /// Clicks the button (or link) whose text contains `text`, within `css`.
    pub async fn click_text(&self, css: &str, text: &str) {
        self.until(&format!("a click on {text:?}"), || async { self.find_text(css, text).await.click().await.ok() })
            .await;
    }

    /// Types into the field labelled `label` (its `<label>` text, exactly) inside `scope`.
    pub async fn fill(&self, scope: &str, label: &str, text: &str) {
        let field = self.labelled(scope, label).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// The form control a `<label>` with this text names (so the accessible name exists).
    pub async fn labelled(&self, scope: &str, label: &str) -> Element {
        let script = "const [scope, text] = arguments;
             for (const label of document.querySelectorAll(scope + ' label')) {
               if (label.textContent.trim() === text && label.control && label.control.id
                   && label.control.getClientRects().length > 0) return label.control.id;
             }
             return null;";
        let id = self
            .until(&format!("a field labelled {label:?} in `{scope}`"), || async {
                let found = self.eval_with(script, vec![json!(scope), json!(label)]).await;
                found.as_str().map(str::to_owned)
            })
            .await;
        self.client.find(Locator::Id(&id)).await.unwrap()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits until `css` matches nothing visible.
    pub async fn gone(&self, css: &str) {
        let script =
            format!("return Array.from(document.querySelectorAll({css:?})).some(e => e.getClientRects().length > 0)");
        self.until(&format!("`{css}` to go away"), || async {
            (!self.eval(&script).await.as_bool().unwrap_or(true)).then_some(())
        })
        .await;
    }

    /// Waits until the page's text contains `text`.
    pub async fn sees(&self, text: &str) {
        self.until(&format!("the text {text:?}"), || async {
            let body = self.eval("return document.body.innerText").await;
            body.as_str().unwrap_or_default().contains(text).then_some(())
        })
        .await;
    }

    pub async fn press(&self, key: Key) {
        let active = self.client.active_element().await.unwrap();
        active.send_keys(&char::from(key).to_string()).await.unwrap();
    }

    /// What has the keyboard focus: its tag, text and accessible label.
    pub async fn focused(&self) -> Value {
        self.eval(
            "const e = document.activeElement;
             return {tag: e.tagName, text: e.textContent.trim(), label: e.getAttribute('aria-label'),
                     in_dialog: Boolean(e.closest('[role=dialog], [role=alertdialog]')), id: e.id};",
        )
        .await
    }

    /// Signs in through the form and waits for the settings.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.goto("/").await;
        self.fill("#sign-in", "Email", email).await;
        self.fill("#sign-in", "Password", password).await;
        self.click("#sign-in button[type=submit]").await;
        self.until("the settings after sign-in", || async { self.path().await.starts_with("/settings").then_some(()) })
            .await;
        self.find("#main h1").await;
    }

    /// No horizontal scrolling: the page fits its window.
    pub async fn assert_fits(&self, what: &str) {
        let sizes = self.eval("return [document.documentElement.scrollWidth, window.innerWidth]").await;
        let (scroll, inner) = (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap());
        assert!(scroll <= inner, "{what} is {scroll}px wide in a {inner}px window");
    }

    /// Every visible control has an accessible name (label, aria-label, text or title).
    pub async fn assert_controls_named(&self, what: &str) {
        let unnamed = self
            .eval(
                "const named = (e) => {
                   if (e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || e.title) return true;
                   if (e.labels && e.labels.length) return true;
                   if (['BUTTON', 'A'].includes(e.tagName) && e.textContent.trim()) return true;
                   return false;
                 };
                 return Array.from(document.querySelectorAll('a[href], button, input, select, textarea'))
                   .filter(e => e.getClientRects().length > 0 && e.type !== 'hidden' && !named(e))
                   .map(e => e.outerHTML.slice(0, 120));",
            )
            .await;
        assert_eq!(unnamed, json!([]), "{what}: controls without an accessible name");
    }

    pub async fn screenshot(&self, file: &std::path::Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(file, png).unwrap();
    }
}
