//! The web front end, embedded in the binary, and `/healthz`.
//!
//! Owns the routes of the static files (`static/` in this crate, compiled in with
//! `include_str!`: no build step, nothing loaded from another host) and the security
//! headers they are served with. Mounted by `server::run` next to `transport_ws`'s `/ws`;
//! it must not speak the chat protocol itself (that is `static/protocol.js` in the
//! browser, and `transport-ws` on the server).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

/// The Content-Security-Policy of every response: scripts, styles, images and
/// connections (`/ws` included: CSP3 lets `'self'` match `ws:`/`wss:` on the same host)
/// only from this server, no inline code, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file: its path under `/`, its content type and its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../static/index.html"),
    },
    Asset {
        path: "/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../static/app.css"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../static/app.js"),
    },
    Asset {
        path: "/page.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../static/page.js"),
    },
    Asset {
        path: "/dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../static/dom.js"),
    },
    Asset {
        path: "/edits.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../static/edits.css"),
    },
    Asset {
        path: "/edits.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../static/edits.js"),
    },
    Asset {
        path: "/files.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../static/files.css"),
    },
    Asset {
        path: "/files.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../static/files.js"),
    },
    Asset {
        path: "/protocol.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../static/protocol.js"),
    },
    Asset {
        path: "/favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../static/favicon.svg"),
    },
];

/// Mounts the front end's files and `/healthz` (200 `ok`) on an actix-web app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for asset in ASSETS {
        let content_type = asset.content_type;
        let body = asset.body;
        cfg.route(
            asset.path,
            web::get().to(move || async move { respond(content_type, body) }),
        );
    }
    cfg.route(
        "/healthz",
        web::get().to(|| async { respond("text/plain; charset=utf-8", "ok\n") }),
    );
}

/// A 200 with the body, its content type and the security headers.
fn respond(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .body(body)
}
