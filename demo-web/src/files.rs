//! `/files`: uploads and downloads of the files messages carry.
//!
//! - `POST /files?name=NAME` with `Authorization: Bearer TOKEN` (the resume token of the
//!   login reply) and the file's bytes as the body: answered `201` with
//!   `{"file":{"id","name","size","kind"}}`; the file then waits for a post of the same
//!   user (`docs/protocol.md`, "Files"). The token is checked before the body is read,
//!   and so is room for it (`Uploader::reserve`: its declared `Content-Length`, or the
//!   largest file without one, within `max_file_bytes`, the user's hourly budget and the
//!   server's `upload_bytes_in_flight`); the body is read only up to what was reserved.
//!   So uploads never hold more than `upload_bytes_in_flight` in memory, however many
//!   arrive at once, and a refused body is never read.
//! - `GET /files/{id}`: the bytes, with `Content-Type` from the engine's sniff of them,
//!   `nosniff`, a sandboxing CSP, and `Content-Disposition: attachment` for everything
//!   but raster images, so an HTML or SVG file is never rendered by the browser.
//!
//! Mounted by `server::run` on the web listener, behind its `Host` check. It decides
//! nothing about files: the engine does ([`Engine::uploader`], [`Engine::file`]).

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chat_core::{ChatError, Engine, FileId};
use futures_util::StreamExt;
use serde::Deserialize;

/// What a downloaded file may do if a browser opens it: nothing (no script, no
/// subresource, a sandboxed origin).
const FILE_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

/// Mounts `POST /files` and `GET /files/{id}` for `engine`.
pub fn configure(cfg: &mut web::ServiceConfig, engine: Engine) {
    let data = web::Data::new(engine);
    cfg.app_data(data)
        .route("/files", web::post().to(upload))
        .route("/files/{id}", web::get().to(download));
}

#[derive(Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

async fn upload(
    request: HttpRequest,
    query: web::Query<UploadQuery>,
    mut body: web::Payload,
    engine: web::Data<Engine>,
) -> HttpResponse {
    let Some(token) = bearer(&request) else {
        return refused(
            &ChatError::InvalidToken,
            "an upload needs `Authorization: Bearer <resume token>`",
        );
    };
    let uploader = match engine.uploader(token).await {
        Ok(uploader) => uploader,
        Err(e) => return unread(error(&e)),
    };
    // Room for the declared length (or the largest file, without one) is taken from the
    // user's budget and the server's bytes in flight before a byte of the body is read.
    let declared = declared_length(&request);
    let reservation = match uploader.reserve(declared.unwrap_or(uploader.max_bytes())) {
        Ok(reservation) => reservation,
        Err(e) => return unread(error(&e)),
    };
    let max = reservation.max_bytes();
    let mut bytes = web::BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            return refused(&ChatError::Empty, "the upload's body could not be read");
        };
        if (bytes.len() + chunk.len()) as u64 > max {
            // More than it said, or than the largest file: stop reading here.
            let too_large = ChatError::FileTooLarge {
                limit: "max_file_bytes",
                bytes: uploader.max_bytes(),
            };
            return unread(error(&too_large));
        }
        bytes.extend_from_slice(&chunk);
    }
    let name = query.name.as_deref().unwrap_or("file");
    match reservation.upload(name, bytes.freeze()).await {
        Ok(file) => HttpResponse::Created().json(serde_json::json!({
            "file": {
                "id": file.id.as_str(),
                "name": &*file.name,
                "size": file.size,
                "kind": file.kind.as_str(),
            }
        })),
        Err(e) => error(&e),
    }
}

async fn download(id: web::Path<String>, engine: web::Data<Engine>) -> HttpResponse {
    let Some(id) = FileId::parse(&id) else {
        return not_found();
    };
    let file = match engine.file(&id).await {
        Ok(Some(file)) => file,
        Ok(None) => return not_found(),
        Err(e) => return error(&e),
    };
    let kind = file.attachment.kind;
    let disposition = if kind.is_image() {
        "inline"
    } else {
        "attachment"
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, kind.content_type()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, FILE_CSP))
        .insert_header(("Cross-Origin-Resource-Policy", "same-origin"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            content_disposition(disposition, &file.attachment.name),
        ))
        .body(file.bytes)
}

/// `inline` or `attachment` with the file's name: an ASCII fallback (`filename=`) and the
/// exact name percent-encoded as UTF-8 (`filename*=`, RFC 6266).
fn content_disposition(disposition: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The token of `Authorization: Bearer TOKEN`, if the request has one.
fn bearer(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The body's declared length, if the request gives one.
fn declared_length(request: &HttpRequest) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `response` to a request whose body is not read (or not to its end): the connection
/// ends with it, so the rest of the body is never read.
fn unread(mut response: HttpResponse) -> HttpResponse {
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    response
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": {"code": "not_found", "message": "no such file (its message may be gone)"}
    }))
}

/// The engine's refusal as an HTTP answer with its status.
fn error(e: &ChatError) -> HttpResponse {
    refused(e, &e.to_string())
}

fn refused(e: &ChatError, message: &str) -> HttpResponse {
    let status = match e {
        ChatError::InvalidToken => StatusCode::UNAUTHORIZED,
        ChatError::FileTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ChatError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ChatError::Unavailable(_) | ChatError::ShuttingDown | ChatError::Store(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = HttpResponse::build(status);
    if let ChatError::RateLimited { retry_after, .. } = e {
        let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        response.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    if matches!(e, ChatError::Unavailable(_)) {
        response.insert_header((header::RETRY_AFTER, "1"));
    }
    response.json(serde_json::json!({"error": {"code": e.code(), "message": message}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_safely_and_kept_exactly_in_utf8() {
        assert_eq!(
            content_disposition("attachment", "a\"b\\c é.txt"),
            "attachment; filename=\"a_b_c _.txt\"; filename*=UTF-8''a%22b%5Cc%20%C3%A9.txt"
        );
        assert_eq!(
            content_disposition("inline", "cat.png"),
            "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"
        );
    }
}
