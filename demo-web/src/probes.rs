//! `/readyz`: the readiness probe an orchestrator asks before sending traffic here.
//!
//! 200 while the engine's store answers (SQLite's writer commits, Redis answers) and the
//! server is not shutting down, 503 otherwise, each with a short JSON body saying which:
//! `{"ready":false,"store":"unreachable","shutting_down":false}`. `/healthz` (in
//! `assets`) stays the liveness probe: it answers 200 while the process serves at all,
//! so an orchestrator does not restart a node that only waits for its Redis.
//!
//! Mounted by `server::run` on the web listener, behind its `Host` check. It asks
//! [`Engine::health`] and decides nothing else.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};
use chat_core::{Engine, Health};
use tokio_util::sync::CancellationToken;

/// Mounts `/readyz` for `engine`; `shutdown` is the server's token (cancelled when
/// shutdown begins, before the engine hears of it).
pub fn configure(cfg: &mut web::ServiceConfig, engine: Engine, shutdown: CancellationToken) {
    cfg.route(
        "/readyz",
        web::get().to(move || {
            let (engine, shutdown) = (engine.clone(), shutdown.clone());
            async move { answer(engine.health().await, shutdown.is_cancelled()) }
        }),
    );
}

/// The probe's answer for `health`, with the server's own shutdown counted in.
fn answer(health: Health, server_stopping: bool) -> HttpResponse {
    let shutting_down = health.shutting_down || server_stopping;
    let ready = health.store_reachable && !shutting_down;
    let store = if health.store_reachable {
        "ok"
    } else {
        "unreachable"
    };
    let body = serde_json::json!({
        "ready": ready,
        "store": store,
        "shutting_down": shutting_down,
    });
    let mut response = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .content_type("application/json")
        .body(format!("{body}\n"))
}
