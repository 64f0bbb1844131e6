//! The user lifecycle (P8): the last admin under concurrency, deactivation and deletion,
//! one-time reset tokens and a user's own sessions.

use chrono::Duration;
use otesse_domain::account::{ChangeUserError, PasswordReset, UserUpdate};
use otesse_domain::audit::AuditFilter;
use otesse_domain::auth::{Session, SessionId};
use otesse_domain::event::{AuditActor, DomainEvent, Event, EventKind};
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::PageRequest;
use otesse_domain::ports::{AccountRepository, AuditLog, SessionRepository, UserDirectory, UserRepository};
use otesse_domain::user::{Email, PasswordHash, Role, User, UserId, UserStatus};
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::{password_hash, random_hash, setup, t0, user};

on_both_databases!(
    concurrent_demotions_of_the_last_two_admins_leave_one,
    deactivation_ends_sessions_and_deletion_leaves_a_tombstone,
    a_reset_token_works_once_and_not_after_it_expires,
    a_password_change_keeps_only_the_session_asked_for,
);

async fn add(db: &Database, organization: OrganizationId, email: &str, role: Role) -> User {
    let member = user(organization, email, role);
    db.users().insert(&member, &password_hash()).await.unwrap();
    member
}

async fn session(db: &Database, user: &User) -> Session {
    let session = Session {
        id: SessionId(Uuid::now_v7()),
        user_id: user.id,
        token_hash: random_hash(),
        created_at: t0(),
        expires_at: t0() + Duration::hours(8),
        user_agent: None,
        ip_address: None,
    };
    db.sessions().insert(&session).await.unwrap();
    session
}

fn demote() -> UserUpdate {
    UserUpdate { role: Some(Role::Viewer), ..UserUpdate::default() }
}

async fn active_admins(db: &Database, organization: OrganizationId) -> usize {
    let users = db.users().list(organization).await.unwrap();
    users.iter().filter(|u| u.role == Role::Admin && u.status == UserStatus::Active).count()
}

async fn audited(db: &Database, organization: OrganizationId, kind: EventKind) -> usize {
    let filter = AuditFilter { action: Some(kind), ..AuditFilter::default() };
    db.audit().list(organization, &filter, &PageRequest::new(Some(100), None).unwrap()).await.unwrap().items.len()
}

async fn concurrent_demotions_of_the_last_two_admins_leave_one(db: Database) {
    let (organization, first) = setup(&db).await;
    for round in 0..4 {
        let second = add(&db, organization.id, &format!("second{round}@acme.test"), Role::Admin).await;
        let mut admins: Vec<_> = db.users().list(organization.id).await.unwrap();
        admins.retain(|u| u.role == Role::Admin && u.status == UserStatus::Active);
        assert_eq!(admins.len(), 2);
        let tasks: Vec<_> = admins
            .iter()
            .map(|admin| {
                let accounts = db.accounts();
                let (org, id) = (organization.id, admin.id);
                tokio::spawn(async move { accounts.update_user(org, id, &demote(), t0(), AuditActor::User(id)).await })
            })
            .collect();
        let outcomes: Vec<_> = futures_util::future::join_all(tasks).await.into_iter().map(|t| t.unwrap()).collect();
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
        assert!(outcomes.contains(&Err(ChangeUserError::LastAdmin)), "{outcomes:?}");
        assert_eq!(active_admins(&db, organization.id).await, 1);
        // Put the first admin back for the next round, and retire the second.
        let remaining = db.users().list(organization.id).await.unwrap();
        let admin = remaining.iter().find(|u| u.role == Role::Admin).unwrap().id;
        if admin != first.id {
            let promote = UserUpdate { role: Some(Role::Admin), ..UserUpdate::default() };
            db.accounts().update_user(organization.id, first.id, &promote, t0(), AuditActor::System).await.unwrap();
        }
        db.accounts().delete_user(organization.id, second.id, t0(), AuditActor::System).await.unwrap();
    }
    // Deactivating or deleting the only admin is refused the same way, and changes nothing.
    let deactivate = UserUpdate { status: Some(UserStatus::Deactivated), ..UserUpdate::default() };
    let actor = AuditActor::User(first.id);
    assert_eq!(
        db.accounts().update_user(organization.id, first.id, &deactivate, t0(), actor).await,
        Err(ChangeUserError::LastAdmin)
    );
    assert_eq!(
        db.accounts().delete_user(organization.id, first.id, t0(), actor).await,
        Err(ChangeUserError::LastAdmin)
    );
    assert_eq!(db.users().find(first.id).await.unwrap().unwrap().status, UserStatus::Active);
}

async fn deactivation_ends_sessions_and_deletion_leaves_a_tombstone(db: Database) {
    let (organization, admin) = setup(&db).await;
    let ops = add(&db, organization.id, "ops@acme.test", Role::Manager).await;
    let before = session(&db, &ops).await;
    let deactivate = UserUpdate { status: Some(UserStatus::Deactivated), ..UserUpdate::default() };
    let actor = AuditActor::User(admin.id);
    let changed = db.accounts().update_user(organization.id, ops.id, &deactivate, t0(), actor).await.unwrap();
    assert_eq!(changed.status, UserStatus::Deactivated);
    assert_eq!(db.sessions().find_active(&before.token_hash, t0()).await.unwrap(), None);
    // Even a session written after (a sign-in racing the deactivation) does not authenticate.
    let late = session(&db, &ops).await;
    assert_eq!(db.sessions().find_active(&late.token_hash, t0()).await.unwrap(), None);
    assert_eq!(audited(&db, organization.id, EventKind::UserDeactivated).await, 1);

    let reactivate = UserUpdate { status: Some(UserStatus::Active), ..UserUpdate::default() };
    db.accounts().update_user(organization.id, ops.id, &reactivate, t0(), actor).await.unwrap();
    assert!(db.sessions().find_active(&late.token_hash, t0()).await.unwrap().is_some());
    assert_eq!(audited(&db, organization.id, EventKind::UserReactivated).await, 1);

    let gone = db.accounts().delete_user(organization.id, ops.id, t0(), actor).await.unwrap();
    assert_eq!(gone.status, UserStatus::Deleted);
    assert_eq!(db.sessions().find_active(&late.token_hash, t0()).await.unwrap(), None);
    assert!(db.users().list(organization.id).await.unwrap().iter().all(|u| u.id != ops.id), "not listed");
    assert_eq!(db.accounts().password_hash(ops.id).await.unwrap(), None);
    let email = Email::parse("ops@acme.test").unwrap();
    assert_eq!(db.users().find_by_email(&email).await.unwrap(), None, "the address is free");
    // The tombstone still names them, for the keys they made.
    let named = db.users().find_many(organization.id, vec![ops.id, admin.id]).await.unwrap();
    let tombstone = named.iter().find(|u| u.id == ops.id).unwrap();
    assert_eq!((tombstone.email.as_str(), tombstone.status), ("ops@acme.test", UserStatus::Deleted));
    assert_eq!(db.accounts().delete_user(organization.id, ops.id, t0(), actor).await, Err(ChangeUserError::NotFound));
    // The address can be given to a new user.
    add(&db, organization.id, "ops@acme.test", Role::Viewer).await;
    assert_eq!(audited(&db, organization.id, EventKind::UserDeleted).await, 1);
}

fn reset(user: &User, admin: &User, expires_in: Duration) -> PasswordReset {
    PasswordReset {
        id: Uuid::now_v7(),
        organization_id: user.organization_id,
        user_id: user.id,
        token_hash: random_hash(),
        created_by: admin.id,
        created_at: t0(),
        expires_at: t0() + expires_in,
        used_at: None,
    }
}

fn event(user: &User, kind: Event) -> DomainEvent {
    DomainEvent::new(user.organization_id, AuditActor::User(user.id), t0(), kind)
}

async fn a_reset_token_works_once_and_not_after_it_expires(db: Database) {
    let (organization, admin) = setup(&db).await;
    let ops = add(&db, organization.id, "ops@acme.test", Role::Manager).await;
    let open = session(&db, &ops).await;
    let issued = || event(&ops, Event::UserPasswordResetIssued { user: ops.clone(), expires_at: t0() });
    let first = reset(&ops, &admin, Duration::hours(1));
    db.accounts().insert_reset(&first, &issued()).await.unwrap();
    // A newer token voids the older one.
    let second = reset(&ops, &admin, Duration::hours(1));
    db.accounts().insert_reset(&second, &issued()).await.unwrap();
    assert!(db.accounts().find_reset(&first.token_hash).await.unwrap().unwrap().used_at.is_some());
    let found = db.accounts().find_reset(&second.token_hash).await.unwrap().unwrap();
    assert_eq!(found, second);

    let done = event(&ops, Event::UserPasswordReset { user: ops.clone() });
    let new_hash = PasswordHash("$argon2id$new".into());
    // Two redemptions at once: one wins.
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (accounts, hash, done) = (db.accounts(), new_hash.clone(), done.clone());
            tokio::spawn(async move { accounts.redeem_reset(second.id, &hash, t0(), &done).await.unwrap() })
        })
        .collect();
    let wins: Vec<bool> = futures_util::future::join_all(tasks).await.into_iter().map(|t| t.unwrap()).collect();
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    assert_eq!(db.accounts().password_hash(ops.id).await.unwrap(), Some(new_hash.clone()));
    assert_eq!(db.sessions().find_active(&open.token_hash, t0()).await.unwrap(), None, "every session ended");
    let again = event(&ops, Event::UserPasswordReset { user: ops.clone() });
    assert!(!db.accounts().redeem_reset(first.id, &password_hash(), t0(), &again).await.unwrap(), "voided");

    let late = reset(&ops, &admin, Duration::minutes(5));
    db.accounts().insert_reset(&late, &issued()).await.unwrap();
    let after = t0() + Duration::minutes(5);
    assert!(!db.accounts().redeem_reset(late.id, &password_hash(), after, &again).await.unwrap(), "expired");
    assert_eq!(db.accounts().password_hash(ops.id).await.unwrap(), Some(new_hash), "nothing changed");
    assert_eq!(audited(&db, organization.id, EventKind::UserPasswordReset).await, 1);
}

async fn a_password_change_keeps_only_the_session_asked_for(db: Database) {
    let (organization, admin) = setup(&db).await;
    let sessions = [session(&db, &admin).await, session(&db, &admin).await, session(&db, &admin).await];
    let listed = db.accounts().sessions(admin.id, t0()).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        sessions.iter().rev().map(|s| s.id).collect::<Vec<_>>()
    );

    let revoked = event(&admin, Event::SessionRevoked { user: admin.clone(), session_id: Some(sessions[0].id) });
    assert!(db.accounts().end_session(admin.id, sessions[0].id, t0(), &revoked).await.unwrap());
    let again = event(&admin, Event::SessionRevoked { user: admin.clone(), session_id: Some(sessions[0].id) });
    assert!(!db.accounts().end_session(admin.id, sessions[0].id, t0(), &again).await.unwrap(), "already ended");
    let stranger = UserId(Uuid::now_v7());
    assert!(!db.accounts().end_session(stranger, sessions[1].id, t0(), &again).await.unwrap(), "not theirs");

    let changed = event(&admin, Event::UserPasswordChanged { user: admin.clone() });
    let hash = PasswordHash("$argon2id$changed".into());
    db.accounts().set_password(admin.id, &hash, Some(sessions[2].id), t0(), &changed).await.unwrap();
    let left = db.accounts().sessions(admin.id, t0()).await.unwrap();
    assert_eq!(left.iter().map(|s| s.id).collect::<Vec<_>>(), [sessions[2].id]);
    assert_eq!(db.accounts().password_hash(admin.id).await.unwrap(), Some(hash));
    assert_eq!(audited(&db, organization.id, EventKind::SessionRevoked).await, 1);
    assert_eq!(audited(&db, organization.id, EventKind::UserPasswordChanged).await, 1);
}
