//! The real server, in-process on port 0, over a fresh database: SQLite in a temporary
//! directory, or a fresh schema of the PostgreSQL database at `OTESSE_TEST_POSTGRES_URL`.

use otesse_client::Client;
use otesse_server::config::Settings;
use otesse_server::startup::Application;
use serde_json::json;

pub const SETUP_TOKEN: &str = "client-test-setup-token-0123456789";
pub const ADMIN_EMAIL: &str = "admin@acme.test";
pub const PASSWORD: &str = "a long test password";

pub struct Server {
    /// The API's base URL, `/v1` included.
    pub base_url: String,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_owned(),
            setup_token: Some(SETUP_TOKEN.to_owned().into()),
            workers: Some(2),
            shutdown_timeout_secs: 5,
            ..Settings::default()
        };
        // No background jobs: nothing but the test's own calls changes what it reads.
        settings.jobs.enabled = false;
        match std::env::var("OTESSE_TEST_POSTGRES_URL") {
            Ok(url) => {
                settings.database_url = Some(url);
                settings.database_schema = Some(format!("client_{}", uuid::Uuid::new_v4().simple()));
            }
            Err(_) => settings.database_url = Some(format!("sqlite://{}", dir.path().join("otesse.db").display())),
        }
        adjust(&mut settings);
        let app = Application::build(settings).await.unwrap();
        let base_url = format!("http://127.0.0.1:{}/v1", app.port());
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        Self { base_url, handle, task, _dir: dir }
    }

    /// First-run setup, then a client signed in as the admin.
    pub async fn admin(&self) -> Client {
        let body = json!({
            "setup_token": SETUP_TOKEN,
            "organization_name": "Acme Cleaning",
            "email": ADMIN_EMAIL,
            "password": PASSWORD,
        });
        let answer = reqwest::Client::new().post(format!("{}/setup", self.base_url)).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 201, "setup: {}", answer.text().await.unwrap());
        Client::builder(&self.base_url).sign_in(ADMIN_EMAIL, PASSWORD).await.unwrap()
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.task.await.unwrap().unwrap();
    }
}
