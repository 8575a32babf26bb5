//! The engine the routers reach through, when it can change while they
//! serve: a restore from the admin page stops the engine, replaces the seed
//! and starts a new engine, while the admin page (and its sessions) and the
//! local API keep answering. Between two engines the engine calls answer 503
//! ("the storage engine is not running").

use std::sync::{Arc, RwLock};

use axum::extract::Request;
use axum::middleware::Next;
use axum::Router;

use crate::engine_api::EngineApi;

/// The engine in force, if any.
#[derive(Default)]
pub struct EngineSlot {
    current: RwLock<Option<Arc<EngineApi>>>,
}

impl std::fmt::Debug for EngineSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineSlot").field("running", &self.get().is_some()).finish()
    }
}

impl EngineSlot {
    /// Puts `api` in force (`None`: no engine until the next `set`).
    pub fn set(&self, api: Option<EngineApi>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = api.map(Arc::new);
    }

    /// The engine in force.
    pub fn get(&self) -> Option<Arc<EngineApi>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Makes the engine API of `router` answer with whatever engine `slot`
/// holds at the time of each request (like [`crate::with_engine`], which
/// fixes one engine for the router's life).
pub fn with_engine_slot(router: Router, slot: Arc<EngineSlot>) -> Router {
    router.layer(axum::middleware::from_fn(move |mut req: Request, next: Next| {
        let api = slot.get();
        async move {
            if let Some(api) = api {
                req.extensions_mut().insert(api);
            }
            next.run(req).await
        }
    }))
}
