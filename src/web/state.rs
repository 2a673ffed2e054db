//! How handlers get the narrow state of their feature from the composition root's
//! [`App`] (axum's `FromRef`): a handler extracts `State<Lifecycle>`, never more than it
//! uses.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::admin::state::Admin;
use crate::app::App;
use crate::authn::state::Authn;
use crate::jobs::Jobs;
use crate::lifecycle::state::Lifecycle;
use crate::oidc::state::Oidc;
use crate::smartcard::state::Cards;

impl FromRef<Arc<App>> for Oidc {
    fn from_ref(app: &Arc<App>) -> Self {
        app.oidc.clone()
    }
}

impl FromRef<Arc<App>> for Authn {
    fn from_ref(app: &Arc<App>) -> Self {
        app.authn.clone()
    }
}

impl FromRef<Arc<App>> for Lifecycle {
    fn from_ref(app: &Arc<App>) -> Self {
        app.lifecycle.clone()
    }
}

impl FromRef<Arc<App>> for Cards {
    fn from_ref(app: &Arc<App>) -> Self {
        app.cards.clone()
    }
}

impl FromRef<Arc<App>> for Admin {
    fn from_ref(app: &Arc<App>) -> Self {
        app.admin.clone()
    }
}

impl FromRef<Arc<App>> for Jobs {
    fn from_ref(app: &Arc<App>) -> Self {
        (*app.jobs).clone()
    }
}
