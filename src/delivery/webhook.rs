//! The HTTP webhook adapter: the message JSON (the outbox fields) is POSTed to an SMS or
//! registered-mail gateway over TLS; any answer but 2xx is a failure.

use super::{DeliveryError, Message};
use crate::config::delivery::WebhookConfig;
use secrecy::ExposeSecret;

/// POSTs `message` to the gateway.
pub async fn send(config: &WebhookConfig, message: &Message) -> Result<(), DeliveryError> {
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DeliveryError::Failed(format!("webhook client: {e}")))?;
    let body = zeroize::Zeroizing::new(message.to_json().to_string());
    let mut request = client
        .post(&config.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.as_bytes().to_vec());
    if let Some(token) = &config.token {
        request = request.bearer_auth(token.expose_secret());
    }
    let answer = request
        .send()
        .await
        .map_err(|e| DeliveryError::Failed(format!("webhook: {}", e.without_url())))?;
    if !answer.status().is_success() {
        return Err(DeliveryError::Failed(format!("webhook answered {}", answer.status())));
    }
    Ok(())
}
