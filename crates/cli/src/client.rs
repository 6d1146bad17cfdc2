//! HTTP to the Railyard API: one blocking reqwest client with the bearer token, path segments percent-encoded,
//! bodies as JSON, multipart forms or raw bytes, and the errors a call can end in.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::blocking::multipart::Form;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// What a call can end in besides an answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build HTTP client: {0}")]
    Build(reqwest::Error),
    #[error("cannot encode the request: {0}")]
    Encode(serde_json::Error),
    #[error("cannot reach {url}: {error}")]
    Unreachable { url: String, error: reqwest::Error },
    #[error("cannot read the answer: {0}")]
    Unreadable(reqwest::Error),
    /// A status other than 2xx, with the API's `error` message (or its whole answer when it has none).
    #[error("{status} {reason}: {message}", status = .status.as_u16(), reason = .status.canonical_reason().unwrap_or(""))]
    Refused { status: StatusCode, message: String },
    /// A 2xx answer without the shape the command reads.
    #[error("unexpected answer: {0}")]
    Unexpected(serde_json::Error),
}

/// Characters sent as they are in a path segment (RFC 3986's unreserved); everything else, `/` included (environment
/// names may hold one), is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `s` percent-encoded as one path segment.
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The bearer token: `--token`/`RAILYARD_TOKEN`, else kuberpult-client's `KUBERPULT_DEX_ACCESS_TOKEN`.
pub fn token(flag: Option<&str>) -> Option<String> {
    flag.map(str::to_owned).or_else(|| std::env::var("KUBERPULT_DEX_ACCESS_TOKEN").ok())
}

/// A request body.
pub enum Body {
    None,
    /// Content type and bytes.
    Raw(String, Vec<u8>),
    Multipart(Form),
}

impl Body {
    /// `value` as a JSON body.
    pub fn json(value: &impl Serialize) -> Result<Body, Error> {
        Ok(Body::Raw("application/json".into(), serde_json::to_vec(value).map_err(Error::Encode)?))
    }
}

/// A client of one Railyard API.
pub struct Client {
    http: reqwest::blocking::Client,
    url: String,
    token: Option<String>,
}

impl Client {
    /// A client of the API at `url`, sending `token` (if any) as bearer token.
    pub fn new(url: &str, token: Option<String>) -> Result<Client, Error> {
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(Error::Build)?;
        Ok(Client { http, url: url.to_owned(), token })
    }

    /// A request without a body; see [`Client::send`].
    pub fn call(&self, method: Method, path: &str, query: &[(&str, String)]) -> Result<Value, Error> {
        self.send(method, path, query, Body::None)
    }

    /// Sends the request; the answer of a 2xx (`{"deleted": true}` for a 204, a string when it is not JSON).
    pub fn send(&self, method: Method, path: &str, query: &[(&str, String)], body: Body) -> Result<Value, Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.url.trim_end_matches('/'))).query(query);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Body::None => req,
            Body::Raw(content_type, bytes) => req.header("content-type", content_type).body(bytes),
            Body::Multipart(form) => req.multipart(form),
        };
        let resp = req.send().map_err(|error| Error::Unreachable { url: self.url.clone(), error })?;
        let status = resp.status();
        let text = resp.text().map_err(Error::Unreadable)?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            Ok(if status == StatusCode::NO_CONTENT { serde_json::json!({"deleted": true}) } else { body })
        } else {
            let message = body.get("error").and_then(Value::as_str).map_or_else(|| body.to_string(), str::to_owned);
            Err(Error::Refused { status, message })
        }
    }
}

/// An answer read as the wire type the command prints.
pub fn decode<T: DeserializeOwned>(answer: &Value) -> Result<T, Error> {
    T::deserialize(answer).map_err(Error::Unexpected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("review/fix-a"), "review%2Ffix-a");
        assert_eq!(segment("dev"), "dev");
        assert_eq!(segment("a b~c.d_e"), "a%20b~c.d_e");
    }

    #[test]
    fn a_refusal_names_the_status_and_the_apis_message() {
        let e = Error::Refused { status: StatusCode::CONFLICT, message: "environment prod is not stopped".into() };
        assert_eq!(e.to_string(), "409 Conflict: environment prod is not stopped");
    }
}
