//! TLS by rustls (R-SEC-1, R-AUTH-7): TLS 1.2 and 1.3 with rustls' default suites
//! (AEAD only, forward secrecy), the `ring` provider. Mode `dev` generates a self-signed
//! certificate under the data dir on first start (key file mode 0600); mode `files` loads
//! the operator's PEM files; mode `off` serves plain HTTP behind a TLS proxy.

use std::path::{Path, PathBuf};

/// TLS set-up errors.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("cannot generate the development certificate: {0}")]
    Generate(String),
    /// File I/O.
    #[error("TLS file {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Installs the process-wide rustls crypto provider (idempotent).
pub fn install_provider() {
    // Err means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Paths of the development certificate and key, created when missing.
pub fn dev_certificate(data_dir: &Path, issuer: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    let cert = dir.join("dev-cert.pem");
    let key = dir.join("dev-key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if let Some(host) = url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        if !names.contains(&host) {
            names.push(host);
        }
    }
    let generated = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(&key, generated.key_pair.serialize_pem().as_bytes()).map_err(io(&key))?;
    std::fs::write(&cert, generated.cert.pem()).map_err(io(&cert))?;
    tracing::warn!(cert = %cert.display(), "generated a self-signed development TLS certificate");
    Ok((cert, key))
}

/// Writes a file readable only by its owner (0600).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
