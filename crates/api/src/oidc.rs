//! Bearer tokens that are JWTs from an OpenID Connect issuer (`--oidc-issuer`, `--oidc-audience`): keys from the
//! issuer's discovery document and JWKS, cached and fetched again for an unknown key id (key rotation) at most once
//! per `--oidc-jwks-min-refresh-seconds`; RS256 and ES256 only; `iss`, `aud`, `exp` and `nbf` checked with a
//! small leeway. An issuer that cannot be reached makes its tokens fail (401, logged) until it can be.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::RwLock;

/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;
/// How long one request to the issuer may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a JWT was refused; logged, never answered in detail.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the token's algorithm {0:?} is not accepted (RS256 or ES256)")]
    Algorithm(Algorithm),
    #[error("no key of the issuer has id {0:?}")]
    UnknownKey(String),
    #[error("the issuer's keys cannot be fetched: {0}")]
    Issuer(String),
    #[error("the token is invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// What Railyard takes from a valid token.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Group names, matched against the policy's `g` lines.
    #[serde(default)]
    pub groups: Vec<String>,
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// One issuer's verifier.
pub struct Oidc {
    issuer: String,
    audiences: Vec<String>,
    min_refresh: Duration,
    client: reqwest::Client,
    keys: RwLock<Vec<Key>>,
    last_fetch: Mutex<Option<Instant>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// True when `token` looks like a JWT (three parts, a header that decodes): it goes to OIDC, not to the tokens
/// file.
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && jsonwebtoken::decode_header(token).is_ok()
}

impl Oidc {
    pub fn new(issuer: String, audiences: Vec<String>, min_refresh: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build()?;
        let issuer = issuer.trim_end_matches('/').to_owned();
        Ok(Self { issuer, audiences, min_refresh, client, keys: RwLock::new(Vec::new()), last_fetch: Mutex::new(None) })
    }

    /// Fetches the keys once at start-up, so the first caller does not wait; a failure is only logged.
    pub async fn warm_up(&self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!(issuer = %self.issuer, error = %e, "OIDC issuer not reachable yet; its tokens fail until it is");
        }
    }

    /// The claims of a valid token.
    pub async fn verify(&self, token: &str) -> Result<Claims, OidcError> {
        let header = jsonwebtoken::decode_header(token)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(OidcError::Algorithm(header.alg));
        }
        if let Some(claims) = self.try_keys(token, &header).await? {
            return Ok(claims);
        }
        // An unknown key id: the issuer may have rotated its keys.
        if self.may_refresh() {
            self.refresh().await?;
            if let Some(claims) = self.try_keys(token, &header).await? {
                return Ok(claims);
            }
        }
        Err(OidcError::UnknownKey(header.kid.unwrap_or_default()))
    }

    async fn try_keys(&self, token: &str, header: &jsonwebtoken::Header) -> Result<Option<Claims>, OidcError> {
        let keys = self.keys.read().await;
        let key = keys.iter().find(|k| k.alg == header.alg && (header.kid.is_none() || k.kid == header.kid));
        let Some(key) = key else { return Ok(None) };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Some(jsonwebtoken::decode::<Claims>(token, &key.key, &validation)?.claims))
    }

    fn may_refresh(&self) -> bool {
        let last = self.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
        last.is_none_or(|t| t.elapsed() >= self.min_refresh)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let fail = |e: reqwest::Error| OidcError::Issuer(e.to_string());
        self.client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(fail)?
            .json()
            .await
            .map_err(fail)
    }

    /// Reads the discovery document and the JWKS it names.
    async fn refresh(&self) -> Result<(), OidcError> {
        *self.last_fetch.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let discovery: Discovery = self.get_json(&url).await?;
        if discovery.issuer.trim_end_matches('/') != self.issuer {
            return Err(OidcError::Issuer(format!("the discovery document names issuer {:?}", discovery.issuer)));
        }
        let set: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(p)
                    if p.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue,
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => keys.push(Key { kid: jwk.common.key_id.clone(), alg, key }),
                Err(e) => {
                    tracing::warn!(kid = ?jwk.common.key_id, error = %e, "skipping an unusable key of the issuer")
                }
            }
        }
        tracing::info!(issuer = %self.issuer, keys = keys.len(), "fetched the OIDC issuer's keys");
        *self.keys.write().await = keys;
        Ok(())
    }
}
