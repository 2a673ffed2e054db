//! The embedded token: renders `softhsm2.conf` under the data dir, creates the token in
//! process with random SO and user PINs, and reads the user PIN (R-AUTH-6, R-SEC-2).
//!
//! PINs come from a CSPRNG ([`crate::random`]), go straight into `AuthPin`
//! (`secrecy`, zeroised on drop) and into files of mode 0600; they are never logged or
//! shown by `Debug`. Operators of a real HSM create the token themselves
//! (`hsm-config/init-token.sh`, `hsm-config/key-ceremony.md`) and set `auto_init = false`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::pkcs11::token::find_token_slot;
use super::HsmError;
use crate::config::HsmConfig;

/// The environment variable SoftHSMv2 reads its configuration path from.
pub const SOFTHSM2_CONF: &str = "SOFTHSM2_CONF";

/// File name of the SO PIN under the data dir (one SO PIN per data dir).
pub const SO_PIN_FILE: &str = "hsm-so.pin";

/// File name of the user PIN under the data dir when `hsm.pin_file` is not set.
pub const USER_PIN_FILE: &str = "hsm-user.pin";

const CONF_TEMPLATE: &str = include_str!("../../hsm-config/softhsm2.conf.tmpl");

/// Serialises token creation in this process: two servers starting at once must not pick
/// the same free slot.
static TOKEN_CREATION: Mutex<()> = Mutex::new(());

/// Whether `module` is SoftHSMv2 (the embedded default).
pub fn is_softhsm(module: &Path) -> bool {
    module
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.contains("softhsm"))
}

/// Renders the SoftHSM configuration template for a token directory.
pub fn render_softhsm_conf(token_dir: &Path) -> String {
    CONF_TEMPLATE.replace("{{TOKEN_DIR}}", &token_dir.display().to_string())
}

/// For the embedded default: unless `SOFTHSM2_CONF` is already set, writes
/// `{data_dir}/softhsm/softhsm2.conf` with token dir `{data_dir}/softhsm/tokens` and sets
/// `SOFTHSM2_CONF` to it. Must run before the module is first loaded in this process
/// (`pkcs11::context_for` calls it under the context lock). Returns the path it set.
pub fn prepare_embedded_softhsm(data_dir: &Path) -> Result<Option<PathBuf>, HsmError> {
    if std::env::var_os(SOFTHSM2_CONF).is_some() {
        return Ok(None);
    }
    let base = std::path::absolute(data_dir)
        .map_err(|e| HsmError::Init(format!("data dir {}: {e}", data_dir.display())))?
        .join("softhsm");
    let token_dir = base.join("tokens");
    create_private_dir(&token_dir)?;
    let conf = base.join("softhsm2.conf");
    let text = render_softhsm_conf(&token_dir);
    if fs::read_to_string(&conf).ok().as_deref() != Some(text.as_str()) {
        fs::write(&conf, text).map_err(|e| HsmError::Init(format!("write {}: {e}", conf.display())))?;
    }
    // Edition 2021: set_var is safe. It runs once, before the module (the only reader) loads.
    std::env::set_var(SOFTHSM2_CONF, &conf);
    Ok(Some(conf))
}

/// The user PIN file: `hsm.pin_file`, else `{data_dir}/hsm-user.pin`.
pub fn user_pin_path(config: &HsmConfig, data_dir: &Path) -> PathBuf {
    config.pin_file.clone().unwrap_or_else(|| data_dir.join(USER_PIN_FILE))
}

/// The configured user PIN: `EIDGATE_HSM_PIN` (`pin_env`) first, then the PIN file.
/// `None` when neither is there.
pub fn configured_pin(config: &HsmConfig, data_dir: &Path) -> Result<Option<AuthPin>, HsmError> {
    if let Some(pin) = &config.pin_env {
        return Ok(Some(AuthPin::new(pin.expose_secret().to_owned())));
    }
    read_pin_file(&user_pin_path(config, data_dir))
}

fn read_pin_file(path: &Path) -> Result<Option<AuthPin>, HsmError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let pin = text.trim();
            if pin.is_empty() {
                return Err(HsmError::Unavailable(format!("PIN file {} is empty", path.display())));
            }
            Ok(Some(AuthPin::new(pin.to_owned())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HsmError::Unavailable(format!(
            "cannot read PIN file {}: {e}",
            path.display()
        ))),
    }
}

/// Creates the token `label` on a free slot: SO PIN from `{data_dir}/hsm-so.pin` (created
/// at random when missing), user PIN `user_pin` or a random one written to the PIN file,
/// then `C_InitToken` and `C_InitPIN`. PIN files are written before the token exists, so
/// a crash never leaves a token nobody can log in to. Returns the token's slot (re-read
/// after init: SoftHSM moves a new token to a new slot id) and the user PIN.
pub(crate) fn create_token(
    context: &Pkcs11,
    config: &HsmConfig,
    data_dir: &Path,
    user_pin: Option<AuthPin>,
) -> Result<(Slot, AuthPin), HsmError> {
    let label = config.token_label.as_str();
    let _guard = TOKEN_CREATION.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(slot) = find_token_slot(context, label)? {
        // Created meanwhile by another server of this process, which wrote the PIN file.
        let pin = match user_pin {
            Some(pin) => pin,
            None => configured_pin(config, data_dir)?.ok_or_else(|| no_pin(label))?,
        };
        return Ok((slot, pin));
    }
    let free = free_slot(context)?;

    let so_path = data_dir.join(SO_PIN_FILE);
    let so_pin = match read_pin_file(&so_path)? {
        Some(pin) => pin,
        None => {
            let pin = Zeroizing::new(crate::random::token());
            write_secret_file(&so_path, pin.as_bytes())?;
            AuthPin::new(pin.to_string())
        }
    };
    let user_pin = match user_pin {
        Some(pin) => pin,
        None => {
            let pin = Zeroizing::new(crate::random::token());
            write_secret_file(&user_pin_path(config, data_dir), pin.as_bytes())?;
            AuthPin::new(pin.to_string())
        }
    };

    context
        .init_token(free, &so_pin, label)
        .map_err(|e| HsmError::Init(format!("C_InitToken: {e}")))?;
    let slot = find_token_slot(context, label)?
        .ok_or_else(|| HsmError::Init(format!("token {label} not found after C_InitToken")))?;
    let session = context
        .open_rw_session(slot)
        .map_err(|e| HsmError::Init(format!("C_OpenSession: {e}")))?;
    session
        .login(UserType::So, Some(&so_pin))
        .map_err(|e| HsmError::Init(format!("SO login: {e}")))?;
    session
        .init_pin(&user_pin)
        .map_err(|e| HsmError::Init(format!("C_InitPIN: {e}")))?;
    if let Err(e) = session.logout() {
        tracing::warn!(token = label, error = %e, "SO logout after token creation failed");
    }
    tracing::info!(token = label, "created HSM token");
    Ok((slot, user_pin))
}

fn no_pin(label: &str) -> HsmError {
    HsmError::Unavailable(format!(
        "no user PIN for token {label}: set EIDGATE_HSM_PIN or hsm.pin_file"
    ))
}

/// The first slot whose token is present but not initialised (SoftHSM always offers one).
pub(crate) fn free_slot(context: &Pkcs11) -> Result<Slot, HsmError> {
    let slots = context
        .get_slots_with_token()
        .map_err(|e| HsmError::Init(format!("C_GetSlotList: {e}")))?;
    for slot in slots {
        match context.get_token_info(slot) {
            Ok(info) if !info.token_initialized() => return Ok(slot),
            Ok(_) => {}
            // A slot that vanished between the two calls is simply not free.
            Err(Pkcs11Error::Pkcs11(RvError::TokenNotPresent | RvError::SlotIdInvalid, _)) => {}
            Err(e) => return Err(HsmError::Init(format!("C_GetTokenInfo: {e}"))),
        }
    }
    Err(HsmError::Init("no free slot to create the token in".into()))
}

/// Writes `content` to `path` with mode 0600 (parent created with 0700): a temporary file
/// in the same directory, then an atomic rename, so a reader never sees half a PIN.
pub fn write_secret_file(path: &Path, content: &[u8]) -> Result<(), HsmError> {
    let fail = |e: std::io::Error| HsmError::Init(format!("write {}: {e}", path.display()));
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("secret");
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(crate::random::bytes::<6>())));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    let written = file.write_all(content).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(fail(e));
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(fail)
}

fn create_private_dir(dir: &Path) -> Result<(), HsmError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| HsmError::Init(format!("create {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_renders_the_token_dir() {
        let text = render_softhsm_conf(Path::new("/var/lib/eidgate/softhsm/tokens"));
        assert!(text.contains("directories.tokendir = /var/lib/eidgate/softhsm/tokens\n"));
        assert!(!text.contains("{{"));
    }

    #[test]
    fn r_sec_2_secret_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/pin");
        write_secret_file(&path, b"1234").unwrap();
        write_secret_file(&path, b"5678").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"5678");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }
}
