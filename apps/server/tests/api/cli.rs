//! The command line, run as a user runs it: the real binary in a fresh directory with a clean
//! environment (no `OTESSE_*` variables of the test run, no `.env`).

use std::process::{Command, Output};

use otesse_server::config::SETTINGS;

pub fn server_command(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_otesse-server"));
    command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).current_dir(dir);
    command
}

fn run(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let Output { status, stdout, stderr } = server_command(dir).args(args).envs(env.iter().copied()).output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn help_and_version_exit_zero_and_help_documents_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let (code, help, _) = run(dir.path(), &["--help"], &[]);
    assert_eq!(code, 0, "{help}");
    assert!(help.contains("Usage: otesse-server [OPTIONS] [COMMAND]"), "{help}");
    for command in ["serve", "migrate", "rewrap", "check-config", "service-token", "demo"] {
        assert!(help.contains(&format!("\n  {command} ")), "{command} missing from\n{help}");
    }
    for info in SETTINGS {
        assert!(help.contains(&format!("  {}\n", info.env())), "{} missing from\n{help}", info.env());
        let default = info.default_value();
        if !default.is_empty() {
            assert!(help.contains(&format!("[default: {default}]")), "{}'s default missing", info.key);
        }
    }
    let (code, short, _) = run(dir.path(), &["-h"], &[]);
    assert_eq!(code, 0);
    assert!(short.contains("--listen <HOST:PORT>") && short.contains("[env: OTESSE_LISTEN=]"), "{short}");
    let (code, version, _) = run(dir.path(), &["--version"], &[]);
    assert_eq!((code, version.trim()), (0, concat!("otesse-server ", env!("CARGO_PKG_VERSION"))));
    let (code, sub, _) = run(dir.path(), &["migrate", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(sub.contains("status") && sub.contains("up"), "{sub}");
}

#[test]
fn unknown_commands_and_flags_print_the_usage_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["frobnicate"][..], &["--nope"], &["serve", "--nope"], &["migrate"], &["migrate", "sideways"]] {
        let (code, stdout, stderr) = run(dir.path(), args, &[]);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains("Usage: otesse-server"), "{args:?}: {stderr}");
    }
    // Nothing was started or created.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn check_config_prints_the_effective_settings_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let key = "v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let (code, stdout, stderr) = run(
        dir.path(),
        &["check-config", "--listen", "127.0.0.1:9123"],
        &[
            ("OTESSE_MASTER_KEYS", key),
            ("OTESSE_SETUP_TOKEN", "canary-setup-token"),
            ("OTESSE_PROVIDERS__POSTMARK__API_KEY", "canary-postmark-key"),
            ("OTESSE_KEY_CACHE__TTL_SECS", "7"),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    for line in ["listen = 127.0.0.1:9123", "key_cache.ttl_secs = 7", "setup_token = [REDACTED]", "mode = development"]
    {
        assert!(stdout.contains(line), "{line} missing from\n{stdout}");
    }
    assert!(stdout.contains("ok     master_keys: v1"), "{stdout}");
    assert!(stdout.contains("will be created on first start"), "{stdout}");
    for canary in ["canary-setup-token", "canary-postmark-key", &key[3..]] {
        assert!(!stdout.contains(canary) && !stderr.contains(canary), "{canary} printed");
    }
    assert!(!dir.path().join("data").exists(), "check-config created the data directory");
}

/// Flags, environment, and what stderr must say.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn check_config_fails_with_a_clear_message_for_each_bad_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [Case; 5] = [
        (&["--listen", "localhost"], &[], "\"localhost\" is not a listen address: expected host:port"),
        (&[], &[("OTESSE_LISTEN", "127.0.0.1:99999")], "is not a listen address"),
        (&[], &[("OTESSE_MASTER_KEYS", "v1:not-base64!")], "OTESSE_MASTER_KEYS is malformed"),
        (
            &["--database-url", "postgres://otesse:canary-pw@127.0.0.1:1/otesse"],
            &[],
            "the database is unreachable at 127.0.0.1:1",
        ),
        (&[], &[("OTESSE_MODE", "production")], "production mode needs OTESSE_MASTER_KEYS"),
    ];
    for (args, env, expected) in cases {
        let (code, stdout, stderr) = run(dir.path(), &[&["check-config"], args].concat(), env);
        assert_eq!(code, 1, "{args:?} {env:?}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{args:?} {env:?}: expected {expected:?} in {stderr}");
        assert!(!stdout.contains("canary-pw") && !stderr.contains("canary-pw"));
    }
    // A setting the loader refuses is named before anything runs.
    let (code, _, stderr) = run(dir.path(), &["check-config"], &[("OTESSE_MODE", "staging")]);
    assert_eq!(code, 1);
    assert!(stderr.contains("configuration:") && stderr.contains("staging"), "{stderr}");
}

#[test]
fn migrate_status_reads_and_migrate_up_applies() {
    let dir = tempfile::tempdir().unwrap();
    let (code, status, stderr) = run(dir.path(), &["migrate", "status"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let total = status.lines().filter(|l| l.starts_with("pending ")).count();
    assert!(total >= 10, "{status}");
    assert!(status.contains(&format!("0 applied, {total} pending")), "{status}");
    let (code, up, _) = run(dir.path(), &["migrate", "up"], &[]);
    assert_eq!((code, up.trim().to_owned()), (0, format!("{total} migrations applied")));
    let (_, status, _) = run(dir.path(), &["migrate", "status"], &[]);
    assert!(status.contains(&format!("{total} applied, 0 pending")), "{status}");
    let (_, again, _) = run(dir.path(), &["migrate", "up"], &[]);
    assert_eq!(again.trim(), "0 migrations applied");
    let (code, checked, _) = run(dir.path(), &["check-config"], &[]);
    assert_eq!(code, 0);
    assert!(checked.contains(&format!("sqlite reachable, {total} of {total} migrations applied")), "{checked}");
}

/// The operator makes a service token with the command line; the running server accepts it for
/// the verification API; `list` never shows it; once revoked (before the server saw it) it is
/// refused.
#[tokio::test]
async fn service_tokens_are_made_listed_and_revoked_by_the_operator() {
    let app = crate::helpers::spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let url = app.database_url();
    let mut env = vec![("OTESSE_DATABASE_URL", url.as_str())];
    if let Some(schema) = &app.schema {
        env.push(("OTESSE_DATABASE_SCHEMA", schema.as_str()));
    }
    let run = |args: &[&str]| run(dir.path(), args, &env);

    let (code, created, stderr) = run(&["service-token", "create", "bookings"]);
    assert_eq!(code, 0, "{stderr}");
    let token = created.lines().find(|l| l.starts_with("ots_svc_")).expect(&created).to_owned();
    assert_eq!(token.len(), "ots_svc_".len() + 40);
    let (_, second, _) = run(&["service-token", "create", "retired"]);
    let retired = second.lines().find(|l| l.starts_with("ots_svc_")).unwrap().to_owned();

    let (code, listed, _) = run(&["service-token", "list"]);
    assert_eq!(code, 0);
    assert!(listed.contains("bookings") && listed.contains(&format!("ots_svc_...{}", &token[token.len() - 4..])));
    assert!(!listed.contains(&token) && !listed.contains(&retired), "a listing shows no secret");
    let retired_id = listed.lines().find(|l| l.contains("retired")).unwrap().split_whitespace().next().unwrap();
    let (code, revoked, _) = run(&["service-token", "revoke", retired_id]);
    assert_eq!((code, revoked.contains("revoked service token")), (0, true));
    let (_, listed, _) = run(&["service-token", "list"]);
    assert!(listed.lines().any(|l| l.contains("retired") && l.contains("revoked ")), "{listed}");
    let (code, _, stderr) = run(&["service-token", "revoke", &uuid::Uuid::now_v7().to_string()]);
    assert_eq!(code, 1);
    assert!(stderr.trim_end().ends_with("otesse-server: no such service token"), "{stderr}");
    let (code, _, _) = run(&["service-token", "create", ""]);
    assert_eq!(code, 1, "an empty name is refused");

    let admin = app.admin().await;
    let (key, _) = app.key(&admin, crate::helpers::key_body("Bookings", "live")).await;
    let check = |token: String| {
        let body = serde_json::json!({"key": key});
        app.send(app.request(reqwest::Method::POST, "/v1/keys/verify").bearer_auth(token).json(&body))
    };
    assert_eq!(check(token).await.expect(200)["valid"], true);
    check(retired).await.expect_error(401, "service_token_invalid");
}
