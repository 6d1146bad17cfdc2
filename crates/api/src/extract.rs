//! Extractors whose rejections are the API's JSON errors (axum's own answer in plain text).

use std::collections::HashMap;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Maps an axum rejection to our error: 400 for bad input (axum says 422 for a body that does not fit), else its status.
pub fn rejection(status: StatusCode, field: &str, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "body_too_large", "the request body is larger than the server accepts")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(status, "unsupported_media_type", text),
        _ => ApiError::bad_request(field, text),
    }
}

/// A body member the wire sends as text and the domain reads as one of an enum's variants (`tier`, `lockBehavior`):
/// like a member of the wrong shape, a bad one is an invalid body.
pub fn body_variant<T: DeserializeOwned>(member: &str, raw: &str) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map_err(|e| ApiError::bad_request("body", format!("{member}: {e}")))
}

/// A JSON body.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e @ JsonRejection::JsonDataError(_)) => Err(rejection(e.status(), "body", e.body_text())),
            Err(e) => Err(rejection(e.status(), "body", e.body_text())),
        }
    }
}

/// An optional JSON body: an empty body is `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| rejection(e.status(), "body", e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| ApiError::bad_request("body", format!("invalid JSON body: {e}")))
    }
}

/// The path parameters, percent-decoded, by name.
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e: PathRejection| ApiError::bad_request("path", e.body_text()))
    }
}

impl Params {
    /// Parameters built by hand (a compatibility surface calling a native handler).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    /// Parameter `name` as given (percent-decoded).
    pub fn raw(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or_default()
    }

    /// Parses parameter `name` as `T` (one of the validated name types).
    pub fn get<T, E>(&self, name: &str) -> Result<T, ApiError>
    where
        T: std::str::FromStr<Err = E>,
        E: Into<railyard_manifest::Error>,
    {
        let raw = self.0.get(name).map(String::as_str).unwrap_or_default();
        raw.parse::<T>().map_err(|e| ApiError::from(e.into()))
    }
}

/// True when the request's `If-None-Match` names `etag` (or is `*`); weak and strong tags compare alike, as
/// RFC 9110 has it for `If-None-Match`.
pub fn etag_matches(headers: &axum::http::HeaderMap, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let want = strip(etag);
    headers
        .get_all(axum::http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || strip(t) == want)
}
