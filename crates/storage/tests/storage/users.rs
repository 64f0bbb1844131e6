//! First-run setup, users and sessions (P1, P2, P3).

use chrono::Duration;
use otesse_domain::auth::{Session, SessionId};
use otesse_domain::ports::{InsertUserError, SessionRepository, SetupStoreError, UserRepository};
use otesse_domain::user::{Email, Role, UserId};
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::{organization, password_hash, random_hash, setup, t0, user};

on_both_databases!(
    setup_happens_once,
    concurrent_setups_let_exactly_one_through,
    emails_are_unique,
    sessions_respect_expiry_and_revocation,
);

async fn setup_happens_once(db: Database) {
    let users = db.users();
    assert!(!users.is_setup_done().await.unwrap());
    let (acme, admin) = setup(&db).await;
    assert!(users.is_setup_done().await.unwrap());

    assert_eq!(users.organization(acme.id).await.unwrap(), Some(acme.clone()));
    assert_eq!(users.find(admin.id).await.unwrap(), Some(admin.clone()));
    let (found, hash) =
        users.find_by_email(&Email::parse("ADMIN@acme.test").unwrap()).await.unwrap().expect("the admin");
    assert_eq!(found, admin);
    assert_eq!(hash, password_hash());
    assert_eq!(users.list(acme.id).await.unwrap(), vec![admin]);

    let second = organization("Other");
    let second_admin = user(second.id, "root@other.test", Role::Admin);
    assert_eq!(users.complete_setup(&second, &second_admin, &password_hash()).await, Err(SetupStoreError::AlreadyDone));
    assert_eq!(users.organization(second.id).await.unwrap(), None);
    assert_eq!(users.find(second_admin.id).await.unwrap(), None);
}

async fn concurrent_setups_let_exactly_one_through(db: Database) {
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let users = db.users();
            let organization = organization(&format!("Org {n}"));
            let admin = user(organization.id, &format!("admin{n}@example.test"), Role::Admin);
            tokio::spawn(async move {
                let outcome = users.complete_setup(&organization, &admin, &password_hash()).await;
                (organization, outcome)
            })
        })
        .collect();
    let outcomes: Vec<_> =
        futures_util::future::join_all(tasks).await.into_iter().map(|joined| joined.expect("task")).collect();

    let winners: Vec<_> = outcomes.iter().filter(|(_, outcome)| outcome.is_ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|(_, outcome)| matches!(outcome, Ok(()) | Err(SetupStoreError::AlreadyDone))));
    for (organization, outcome) in &outcomes {
        let stored = db.users().organization(organization.id).await.unwrap();
        assert_eq!(stored.is_some(), outcome.is_ok(), "losers leave nothing behind");
    }
}

async fn emails_are_unique(db: Database) {
    let (organization, _) = setup(&db).await;
    let users = db.users();
    let manager = user(organization.id, "ops@acme.test", Role::Manager);
    users.insert(&manager, &password_hash()).await.unwrap();

    let twin = user(organization.id, "OPS@acme.test", Role::Viewer);
    assert_eq!(users.insert(&twin, &password_hash()).await, Err(InsertUserError::EmailTaken));
    assert_eq!(users.find(twin.id).await.unwrap(), None);
    assert_eq!(users.list(organization.id).await.unwrap().len(), 2);
}

async fn sessions_respect_expiry_and_revocation(db: Database) {
    let (_, admin) = setup(&db).await;
    let sessions = db.sessions();
    let session = Session {
        id: SessionId(Uuid::now_v7()),
        user_id: admin.id,
        token_hash: random_hash(),
        created_at: t0(),
        expires_at: t0() + Duration::hours(8),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        ip_address: Some("2001:db8::7".parse().unwrap()),
    };
    sessions.insert(&session).await.unwrap();

    let found = sessions.find_active(&session.token_hash, t0()).await.unwrap();
    assert_eq!(found, Some((session.clone(), admin.clone())));
    let almost = session.expires_at - Duration::microseconds(1);
    assert!(sessions.find_active(&session.token_hash, almost).await.unwrap().is_some());
    assert_eq!(
        sessions.find_active(&session.token_hash, session.expires_at).await.unwrap(),
        None,
        "expired at expires_at"
    );
    assert_eq!(sessions.find_active(&random_hash(), t0()).await.unwrap(), None);

    let signed_out = t0() + Duration::hours(1);
    sessions.revoke(session.id, signed_out).await.unwrap();
    assert!(
        sessions.find_active(&session.token_hash, signed_out - Duration::minutes(1)).await.unwrap().is_some(),
        "still valid before the sign-out"
    );
    assert_eq!(sessions.find_active(&session.token_hash, signed_out).await.unwrap(), None);
    // Ending an ended session, or an unknown one, is not an error and changes nothing.
    sessions.revoke(session.id, signed_out + Duration::hours(1)).await.unwrap();
    sessions.revoke(SessionId(Uuid::now_v7()), signed_out).await.unwrap();
    assert_eq!(sessions.find_active(&session.token_hash, signed_out).await.unwrap(), None);

    // A session of a user that does not exist cannot be stored.
    let orphan = Session {
        id: SessionId(Uuid::now_v7()),
        user_id: UserId(Uuid::now_v7()),
        token_hash: random_hash(),
        ..session
    };
    assert!(sessions.insert(&orphan).await.is_err());
}
