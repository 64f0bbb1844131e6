//! In-app notifications (K13): the signed-in user's own, newest first, and marking one read.

use actix_web::web;
use chrono::{DateTime, Utc};
use otesse_domain::notification::{Notification, NotificationService};
use otesse_domain::page::PageRequest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ListResponse, parse_id};
use crate::error::ApiError;
use crate::extract::ByUser;

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: uuid::Uuid,
    /// `api_key.expiring` or `webhook_endpoint.disabled`.
    #[schema(schema_with = super::wire::notification_kind)]
    pub kind: &'static str,
    pub title: String,
    pub body: String,
    /// What it is about: `api_key:<id>` or `webhook_endpoint:<id>`.
    pub subject: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl From<&Notification> for NotificationView {
    fn from(n: &Notification) -> Self {
        Self {
            id: n.id,
            kind: n.kind.as_str(),
            title: n.title.clone(),
            body: n.body.clone(),
            subject: n.subject.clone(),
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// Only the unread ones.
    pub unread: Option<bool>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Your notifications, newest first.
#[utoipa::path(get, path = "/v1/notifications", operation_id = "listNotifications", tag = "notifications", params(NotificationQuery), security(("session" = [])), responses((status = 200, body = ListResponse<NotificationView>), crate::openapi::errors::SignedIn))]
pub async fn list(
    service: web::Data<NotificationService>,
    user: ByUser,
    query: web::Query<NotificationQuery>,
) -> Result<web::Json<ListResponse<NotificationView>>, ApiError> {
    let cursor = super::PageQuery { limit: query.limit, cursor: query.cursor.clone() }.cursor()?;
    let page = PageRequest::new(query.limit, cursor)?;
    let page = service.list(&user.0, query.unread.unwrap_or(false), &page).await?;
    Ok(web::Json(ListResponse::new(page.items.iter().map(NotificationView::from).collect(), page.next)))
}

/// Mark one of your notifications read (again is harmless: the first time is kept).
#[utoipa::path(post, path = "/v1/notifications/{id}/read", operation_id = "markNotificationRead", tag = "notifications", params(("id" = uuid::Uuid, Path), crate::openapi::IdempotencyKey), security(("session" = [])), responses((status = 200, body = NotificationView), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::NotFound, crate::openapi::errors::Idempotent))]
pub async fn mark_read(
    service: web::Data<NotificationService>,
    user: ByUser,
    id: web::Path<String>,
) -> Result<web::Json<NotificationView>, ApiError> {
    let id = parse_id(&id, "notification")?;
    let read = service.mark_read(&user.0, id).await?.ok_or_else(|| ApiError::not_found("notification"))?;
    Ok(web::Json(NotificationView::from(&read)))
}
