//! SoftHSM token initialisation (in progress).
