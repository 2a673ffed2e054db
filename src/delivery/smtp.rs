//! The SMTP adapter (the `lettre` crate over rustls): the e-mail channel. Port 465 uses
//! implicit TLS, any other port STARTTLS (required, never plain text).

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{DeliveryError, Message, SecretKind};
use crate::config::delivery::SmtpConfig;

/// Sends `message` by e-mail.
pub async fn send(config: &SmtpConfig, message: &Message) -> Result<(), DeliveryError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| DeliveryError::Failed(format!("smtp {what}: {e}"));
    let subject = match message.kind {
        SecretKind::ActivationCode => "Your eID activation code",
        SecretKind::RevocationSecret => "Your eID revocation secret",
    };
    let text = zeroize::Zeroizing::new(format!(
        "{subject}: {}\n\nMeans {}. Keep it to yourself; nobody from the provider will ask for it.\n",
        message.secret.expose(),
        message.means
    ));
    let email = lettre::Message::builder()
        .from(config.from.parse().map_err(|e| failed("from", &e))?)
        .to(message.to.parse().map_err(|e| failed("to", &e))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(text.to_string())
        .map_err(|e| failed("message", &e))?;
    let builder = if config.port == 465 {
        AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
    }
    .map_err(|e| failed("relay", &e))?
    .port(config.port);
    let builder = match (&config.username, &config.password) {
        (Some(user), Some(password)) => {
            builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()))
        }
        _ => builder,
    };
    builder.build().send(email).await.map_err(|e| failed("send", &e))?;
    Ok(())
}
