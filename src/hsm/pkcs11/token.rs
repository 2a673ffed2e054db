//! The process-wide PKCS#11 context per module path, token look-up by label, and the
//! per-token lock for key generation and rotation.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::slot::Slot;

use crate::hsm::HsmError;

/// Loaded modules: `Pkcs11` finalises the library when its last clone drops, so the
/// process keeps one per module path for its whole life.
static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

/// Per-token lock for key generation and rotation in this process.
static TOKEN_LOCKS: Mutex<Vec<(String, Arc<Mutex<()>>)>> = Mutex::new(Vec::new());

/// The process-wide context of `module`: loaded and `C_Initialize`d on first use
/// (`CKR_CRYPTOKI_ALREADY_INITIALIZED` is tolerated), then shared. Anything else in the
/// process that needs the same module (the card stand-in, tests) must use this rather
/// than `Pkcs11::new`: dropping a second context would `C_Finalize` the shared library.
pub fn context(module: &Path) -> Result<Pkcs11, HsmError> {
    context_with(module, || Ok(()))
}

/// Like [`context`], but runs `before_load` under the lock when the module is not loaded
/// yet (to set `SOFTHSM2_CONF` before SoftHSM reads it).
pub(super) fn context_with(
    module: &Path,
    before_load: impl FnOnce() -> Result<(), HsmError>,
) -> Result<Pkcs11, HsmError> {
    let key = module.canonicalize().unwrap_or_else(|_| module.to_owned());
    let mut contexts = CONTEXTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, context)) = contexts.iter().find(|(path, _)| *path == key) {
        return Ok(context.clone());
    }
    before_load()?;
    let context = Pkcs11::new(&key)
        .map_err(|e| HsmError::Unavailable(format!("cannot load PKCS#11 module {}: {e}", key.display())))?;
    match context.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(HsmError::Unavailable(format!("C_Initialize: {e}"))),
    }
    contexts.push((key, context.clone()));
    Ok(context)
}

/// The slot holding the initialised token labelled `label`. The slot list is read anew on
/// every call, so a token created after the module was loaded is found.
pub fn find_token_slot(context: &Pkcs11, label: &str) -> Result<Option<Slot>, HsmError> {
    let slots = context
        .get_slots_with_token()
        .map_err(|e| HsmError::Unavailable(format!("C_GetSlotList: {e}")))?;
    for slot in slots {
        match context.get_token_info(slot) {
            Ok(info) if info.token_initialized() && info.label().trim_end() == label => return Ok(Some(slot)),
            Ok(_) => {}
            Err(Pkcs11Error::Pkcs11(RvError::TokenNotPresent | RvError::SlotIdInvalid, _)) => {}
            Err(e) => return Err(HsmError::Unavailable(format!("C_GetTokenInfo: {e}"))),
        }
    }
    Ok(None)
}

pub(super) fn token_lock(module: &Path, label: &str) -> Arc<Mutex<()>> {
    let key = format!("{}\u{0}{label}", module.display());
    let mut locks = TOKEN_LOCKS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, lock)) = locks.iter().find(|(k, _)| *k == key) {
        return Arc::clone(lock);
    }
    let lock = Arc::new(Mutex::new(()));
    locks.push((key, Arc::clone(&lock)));
    lock
}
