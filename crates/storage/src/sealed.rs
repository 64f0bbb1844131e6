//! The rows that hold sealed secrets ([`SealedSecretStore`]), for the master-key rewrap: each
//! kind of [`SecretOwner`] names its table and row, so a swap touches exactly that one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::integration::{CredentialField, TokenKind};
use otesse_domain::organization::OrganizationId;
use otesse_domain::sealed::{Ciphertext, EndpointSlot, SealedSecret, SealedSecretStore, SecretOwner};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::Database;
use crate::entity::{
    integration_credential as credential, integration_oauth_token as oauth, stripe_webhook_endpoint as stripe,
    webhook_endpoint as outbound,
};
use crate::support::{corrupt, db_err, stored, swap_sealed};

/// Sealed secrets on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct SealedSecretsStore {
    conn: DatabaseConnection,
}

impl SealedSecretsStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone() }
    }
}

fn version(table: &str, column: &str, raw: i32) -> Result<u32, StorageError> {
    u32::try_from(raw).map_err(|_| corrupt(table, column, raw))
}

#[async_trait]
impl SealedSecretStore for SealedSecretsStore {
    async fn below_version(
        &self,
        below: u32,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SealedSecret>, StorageError> {
        // Beyond i32::MAX every stored version is below.
        let below = i32::try_from(below).ok();
        let limit = u64::from(limit);
        let mut sealed = Vec::new();

        let mut query = credential::Entity::find();
        if let Some(below) = below {
            query = query.filter(credential::Column::KeyVersion.lt(below));
        }
        for row in query.order_by_asc(credential::Column::Id).limit(limit).all(&self.conn).await.map_err(db_err)? {
            let field = CredentialField::parse(&row.field)
                .ok_or_else(|| corrupt("integration_credentials", "field", &row.field))?;
            sealed.push(SealedSecret {
                owner: SecretOwner::ConnectionCredential {
                    organization: OrganizationId(row.organization_id),
                    connection: row.connection_id,
                    field,
                },
                ciphertext: Ciphertext {
                    key_version: version("integration_credentials", "key_version", row.key_version)?,
                    bytes: row.ciphertext,
                },
            });
        }

        // OAuth connections' tokens: the access token, and the refresh token when there is one.
        let mut access = oauth::Entity::find();
        let mut refresh = oauth::Entity::find().filter(oauth::Column::RefreshCiphertext.is_not_null());
        if let Some(below) = below {
            access = access.filter(oauth::Column::AccessKeyVersion.lt(below));
            refresh = refresh.filter(oauth::Column::RefreshKeyVersion.lt(below));
        }
        let by_connection =
            |query: sea_orm::Select<oauth::Entity>| query.order_by_asc(oauth::Column::ConnectionId).limit(limit);
        let token_owner = |row: &oauth::Model, token| SecretOwner::OAuthToken {
            organization: OrganizationId(row.organization_id),
            connection: row.connection_id,
            token,
        };
        for row in by_connection(access).all(&self.conn).await.map_err(db_err)? {
            sealed.push(SealedSecret {
                owner: token_owner(&row, TokenKind::Access),
                ciphertext: Ciphertext {
                    key_version: version("integration_oauth_tokens", "access_key_version", row.access_key_version)?,
                    bytes: row.access_ciphertext,
                },
            });
        }
        for row in by_connection(refresh).all(&self.conn).await.map_err(db_err)? {
            if let (Some(key_version), Some(bytes)) = (row.refresh_key_version, row.refresh_ciphertext.clone()) {
                let key_version = version("integration_oauth_tokens", "refresh_key_version", key_version)?;
                sealed.push(SealedSecret {
                    owner: token_owner(&row, TokenKind::Refresh),
                    ciphertext: Ciphertext { key_version, bytes },
                });
            }
        }

        let mut query = stripe::Entity::find();
        if let Some(below) = below {
            query = query.filter(stripe::Column::KeyVersion.lt(below));
        }
        for row in query.order_by_asc(stripe::Column::Id).limit(limit).all(&self.conn).await.map_err(db_err)? {
            sealed.push(SealedSecret {
                owner: SecretOwner::StripeSigningSecret {
                    organization: OrganizationId(row.organization_id),
                    endpoint: row.id,
                },
                ciphertext: Ciphertext {
                    key_version: version("stripe_webhook_endpoints", "key_version", row.key_version)?,
                    bytes: row.secret_ciphertext,
                },
            });
        }

        // Outbound endpoints: current secrets, and previous ones while they are still sent (an
        // expired previous secret is never read again and is left as it is).
        let mut current = outbound::Entity::find();
        let mut previous = outbound::Entity::find()
            .filter(outbound::Column::PreviousSecretCiphertext.is_not_null())
            .filter(outbound::Column::PreviousSecretUntil.gt(stored(now)));
        if let Some(below) = below {
            current = current.filter(outbound::Column::KeyVersion.lt(below));
            previous = previous.filter(outbound::Column::PreviousKeyVersion.lt(below));
        }
        let by_id = |query: sea_orm::Select<outbound::Entity>| query.order_by_asc(outbound::Column::Id).limit(limit);
        let owner = |row: &outbound::Model, slot| SecretOwner::OutboundEndpointSecret {
            organization: OrganizationId(row.organization_id),
            endpoint: row.id,
            slot,
        };
        for row in by_id(current).all(&self.conn).await.map_err(db_err)? {
            sealed.push(SealedSecret {
                owner: owner(&row, EndpointSlot::Current),
                ciphertext: Ciphertext {
                    key_version: version("webhook_endpoints", "key_version", row.key_version)?,
                    bytes: row.secret_ciphertext,
                },
            });
        }
        for row in by_id(previous).all(&self.conn).await.map_err(db_err)? {
            // Read like the delivery reads it: without a version there is no previous secret.
            if let (Some(key_version), Some(bytes)) = (row.previous_key_version, row.previous_secret_ciphertext.clone())
            {
                let key_version = version("webhook_endpoints", "previous_key_version", key_version)?;
                sealed.push(SealedSecret {
                    owner: owner(&row, EndpointSlot::Previous),
                    ciphertext: Ciphertext { key_version, bytes },
                });
            }
        }
        Ok(sealed)
    }

    async fn swap(&self, secret: &SealedSecret, new: &Ciphertext) -> Result<bool, StorageError> {
        let old = &secret.ciphertext;
        match secret.owner {
            SecretOwner::ConnectionCredential { organization, connection, field } => {
                let row = Condition::all()
                    .add(credential::Column::OrganizationId.eq(organization.0))
                    .add(credential::Column::ConnectionId.eq(connection))
                    .add(credential::Column::Field.eq(field.as_str()));
                let columns = [credential::Column::KeyVersion, credential::Column::Ciphertext];
                swap_sealed::<credential::Entity>(&self.conn, row, columns, old, new).await
            }
            SecretOwner::StripeSigningSecret { organization, endpoint } => {
                let row = Condition::all()
                    .add(stripe::Column::OrganizationId.eq(organization.0))
                    .add(stripe::Column::Id.eq(endpoint));
                let columns = [stripe::Column::KeyVersion, stripe::Column::SecretCiphertext];
                swap_sealed::<stripe::Entity>(&self.conn, row, columns, old, new).await
            }
            SecretOwner::OutboundEndpointSecret { organization, endpoint, slot } => {
                let row = Condition::all()
                    .add(outbound::Column::OrganizationId.eq(organization.0))
                    .add(outbound::Column::Id.eq(endpoint));
                let columns = match slot {
                    EndpointSlot::Current => [outbound::Column::KeyVersion, outbound::Column::SecretCiphertext],
                    EndpointSlot::Previous => {
                        [outbound::Column::PreviousKeyVersion, outbound::Column::PreviousSecretCiphertext]
                    }
                };
                swap_sealed::<outbound::Entity>(&self.conn, row, columns, old, new).await
            }
            SecretOwner::OAuthToken { organization, connection, token } => {
                let row = Condition::all()
                    .add(oauth::Column::OrganizationId.eq(organization.0))
                    .add(oauth::Column::ConnectionId.eq(connection));
                let columns = match token {
                    TokenKind::Access => [oauth::Column::AccessKeyVersion, oauth::Column::AccessCiphertext],
                    TokenKind::Refresh => [oauth::Column::RefreshKeyVersion, oauth::Column::RefreshCiphertext],
                };
                swap_sealed::<oauth::Entity>(&self.conn, row, columns, old, new).await
            }
            // Kept for a day or minutes, never rewrapped (see the port).
            SecretOwner::IdempotentResponse { .. } | SecretOwner::OAuthVerifier { .. } => Ok(false),
        }
    }
}
