//! The embedded guard: Otesse's own check (`otesse_server::embedded`), in-process, on
//! Otesse's database. Its answers go through the same wire form as the verification API's, so
//! both modes refuse and admit alike.

use otesse_server::embedded::EmbeddedVerifier;
use otesse_server::routes::verify::{Refusal as OtesseRefusal, VerifyRequest};

use crate::answer::Answer;
use crate::{Check, Refusal, VerifiedKey};

/// Why an embedded guard could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("the embedded guard could not open Otesse's database: {0}")]
pub struct EmbeddedError(#[from] otesse_server::startup::StartupError);

pub(crate) struct Embedded {
    verifier: EmbeddedVerifier,
}

impl Embedded {
    pub async fn open(settings: &otesse_server::config::Settings) -> Result<Self, EmbeddedError> {
        Ok(Self { verifier: EmbeddedVerifier::open(settings).await? })
    }

    pub async fn verify(&self, check: &Check<'_>) -> Result<VerifiedKey, Refusal> {
        let request = VerifyRequest {
            key: check.key.to_owned(),
            scopes: check.scopes.iter().map(|scope| (*scope).to_owned()).collect(),
            method: Some(check.method.to_owned()),
            path: Some(check.path.to_owned()),
            ip: check.ip.map(|ip| ip.to_string()),
        };
        let answer = match self.verifier.verify(&request).await {
            Ok(answer) => serde_json::to_value(answer),
            // A request the verification API would refuse with 400 (a path it cannot log, a
            // scope that does not exist), or the database failing: relayed in Otesse's words.
            Err(err) => return Err(refusal(OtesseRefusal::from(err))),
        };
        answer
            .and_then(serde_json::from_value::<Answer>)
            .map_err(|err| {
                tracing::error!(error = %err, "the embedded verifier's answer is unreadable");
                Refusal::internal()
            })?
            .into_verdict()
    }

    pub async fn flush(&self) {
        self.verifier.flush().await;
    }
}

fn refusal(otesse: OtesseRefusal) -> Refusal {
    serde_json::to_value(otesse).and_then(serde_json::from_value).unwrap_or_else(|_| Refusal::internal())
}
