//! A bookings service of the platform, protected by Otesse API keys (S1).
//!
//! It owns its data (a `bookings` table in its own database) and trusts Otesse for who may
//! reach it: `GET /v1/bookings` needs `bookings.read`, `POST /v1/bookings` `bookings.write`,
//! through [`otesse_guard`]. A booking belongs to the key's organization and environment, so a
//! test key sees and makes test bookings only. Refusals are Otesse's own answers.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, ResponseError, web};
use chrono::{DateTime, Utc};
use otesse_guard::scope::{BookingsRead, BookingsWrite};
use otesse_guard::{Authorized, Environment, Guard};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A booking, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Booking {
    /// `bk_`-less: a UUID (v7, so newer bookings sort after older ones).
    pub id: Uuid,
    /// `live` or `test`, from the key that made it.
    pub environment: Environment,
    /// Who the booking is for.
    pub customer_name: String,
    /// What is booked, e.g. "Deep clean".
    pub service: String,
    /// When the job starts.
    pub starts_at: DateTime<Utc>,
    /// When the booking was made.
    pub created_at: DateTime<Utc>,
}

/// The service's own storage: one table, on SQLite or PostgreSQL.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Opens (and if needed creates) the bookings table at `url` (`sqlite://...?mode=rwc` or
    /// `postgres://...`).
    pub async fn open(url: &str) -> Result<Self, sea_orm::DbErr> {
        let db = sea_orm::Database::connect(url).await?;
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS bookings (
                id TEXT PRIMARY KEY,
                organization_id TEXT NOT NULL,
                environment TEXT NOT NULL,
                customer_name TEXT NOT NULL,
                service TEXT NOT NULL,
                starts_at TEXT NOT NULL,
                created_at TEXT NOT NULL
            )",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS bookings_by_tenant ON bookings (organization_id, environment, id)",
        )
        .await?;
        Ok(Self { db })
    }

    fn statement(&self, sql: &str, values: Vec<Value>) -> Statement {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => sql.to_owned(),
            _ => sql.replace('$', "?"),
        };
        Statement::from_sql_and_values(backend, sql, values)
    }

    async fn insert(&self, organization: Uuid, booking: &Booking) -> Result<(), sea_orm::DbErr> {
        let values: Vec<Value> = vec![
            booking.id.to_string().into(),
            organization.to_string().into(),
            booking.environment.as_str().into(),
            booking.customer_name.clone().into(),
            booking.service.clone().into(),
            booking.starts_at.to_rfc3339().into(),
            booking.created_at.to_rfc3339().into(),
        ];
        let sql =
            "INSERT INTO bookings (id, organization_id, environment, customer_name, service, starts_at, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        self.db.execute_raw(self.statement(sql, values)).await?;
        Ok(())
    }

    /// The tenant's bookings, newest first, after `before` (a booking id) when given.
    async fn list(
        &self,
        organization: Uuid,
        environment: Environment,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Booking>, sea_orm::DbErr> {
        let mut values: Vec<Value> =
            vec![organization.to_string().into(), environment.as_str().into(), i64::from(limit).into()];
        let mut sql = String::from(
            "SELECT id, environment, customer_name, service, starts_at, created_at FROM bookings
             WHERE organization_id = $1 AND environment = $2",
        );
        if let Some(before) = before {
            values.push(before.to_string().into());
            sql.push_str(" AND id < $4");
        }
        sql.push_str(" ORDER BY id DESC LIMIT $3");
        let rows = self.db.query_all_raw(self.statement(&sql, values)).await?;
        rows.iter()
            .map(|row| {
                let text = |column: &str| row.try_get::<String>("", column);
                let time = |column: &str| -> Result<DateTime<Utc>, sea_orm::DbErr> {
                    DateTime::parse_from_rfc3339(&text(column)?)
                        .map(|at| at.with_timezone(&Utc))
                        .map_err(|err| sea_orm::DbErr::Custom(err.to_string()))
                };
                Ok(Booking {
                    id: text("id")?.parse().map_err(|_| sea_orm::DbErr::Custom("bad id".into()))?,
                    environment: if text("environment")? == "live" { Environment::Live } else { Environment::Test },
                    customer_name: text("customer_name")?,
                    service: text("service")?,
                    starts_at: time("starts_at")?,
                    created_at: time("created_at")?,
                })
            })
            .collect()
    }
}

/// An error answer in Otesse's shape (P4).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: "invalid_parameter",
            message: message.into(),
        }
    }

    fn internal(err: &sea_orm::DbErr) -> Self {
        tracing::error!(error = %err, "bookings storage failure");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "api_error",
            code: "internal_error",
            message: "Something went wrong on our side. Please try again.".into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .json(serde_json::json!({"error": {"type": self.kind, "code": self.code, "message": self.message}}))
    }
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A page of bookings: `{data, has_more, next_cursor}`, as Otesse's lists.
#[derive(Debug, Serialize)]
pub struct Page {
    data: Vec<Booking>,
    has_more: bool,
    next_cursor: Option<Uuid>,
}

async fn list(
    key: Authorized<BookingsRead>,
    store: web::Data<Store>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("`limit` must be between 1 and 100."));
    }
    let before = query
        .cursor
        .as_deref()
        .map(|raw| raw.parse::<Uuid>().map_err(|_| ApiError::invalid("`cursor` is not valid.")))
        .transpose()?;
    let mut data = store
        .list(key.organization_id, key.environment, before, limit + 1)
        .await
        .map_err(|err| ApiError::internal(&err))?;
    let has_more = data.len() > limit as usize;
    data.truncate(limit as usize);
    let next_cursor = has_more.then(|| data.last().map(|booking| booking.id)).flatten();
    Ok(web::Json(Page { data, has_more, next_cursor }))
}

/// The body of `POST /v1/bookings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBooking {
    customer_name: String,
    service: String,
    starts_at: DateTime<Utc>,
}

fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!("`{field}` must be 1 to {max} characters, without control characters.")));
    }
    Ok(value.to_owned())
}

async fn create(
    key: Authorized<BookingsWrite>,
    store: web::Data<Store>,
    body: web::Json<NewBooking>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let booking = Booking {
        id: Uuid::now_v7(),
        environment: key.environment,
        customer_name: text("customer_name", &body.customer_name, 200)?,
        service: text("service", &body.service, 100)?,
        starts_at: body.starts_at,
        created_at: now,
    };
    store.insert(key.organization_id, &booking).await.map_err(|err| ApiError::internal(&err))?;
    Ok(HttpResponse::Created().json(booking))
}

async fn healthz(guard: web::Data<Guard>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "guard": {"cached_keys": guard.cached_keys(), "listening": guard.is_listening()},
    }))
}

/// The service on `listener`, checking keys with `guard` and keeping bookings in `store`.
pub fn serve(listener: TcpListener, guard: Guard, store: Store) -> std::io::Result<Server> {
    let guard = web::Data::new(guard);
    let store = web::Data::new(store);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(guard.clone())
            .app_data(store.clone())
            .app_data(web::JsonConfig::default().limit(16 * 1024).error_handler(|err, _| {
                ApiError::invalid(match err {
                    actix_web::error::JsonPayloadError::Deserialize(err) if err.is_data() => {
                        "The body must be {customer_name, service, starts_at (RFC 3339)}.".to_owned()
                    }
                    _ => "The body must be a JSON object.".to_owned(),
                })
                .into()
            }))
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|_, _| ApiError::invalid("The query accepts `limit` and `cursor` only.").into()),
            )
            .route("/healthz", web::get().to(healthz))
            .route("/v1/bookings", web::get().to(list))
            .route("/v1/bookings", web::post().to(create))
    })
    .workers(2)
    .listen(listener)?
    .run();
    Ok(server)
}
