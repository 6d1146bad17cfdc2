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
    #[error("the issuer cannot be reached: {0}")]
    Issuer(String),
    #[error("{0}")]
    Refused(String),
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
    /// Where the web UI sends people to sign in, and where it trades the code for a token (from discovery).
    endpoints: RwLock<Option<Endpoints>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
}

/// The issuer's endpoints for the authorization-code flow.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Endpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
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
        let (keys, last_fetch, endpoints) = (RwLock::new(Vec::new()), Mutex::new(None), RwLock::new(None));
        Ok(Self { issuer, audiences, min_refresh, client, keys, last_fetch, endpoints })
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

    /// The issuer's sign-in endpoints (read from discovery, fetched now if not yet known).
    pub async fn endpoints(&self) -> Result<Endpoints, OidcError> {
        if let Some(e) = self.endpoints.read().await.clone() {
            return Ok(e);
        }
        if self.may_refresh() {
            self.refresh().await?;
        }
        self.endpoints.read().await.clone().ok_or_else(|| {
            OidcError::Issuer("the discovery document names no authorization_endpoint and token_endpoint".into())
        })
    }

    /// Trades an authorization code (with its PKCE verifier) for the issuer's ID token, as a public client, and
    /// checks that token like any other: only a token this server would accept is handed to the browser.
    pub async fn exchange(
        &self,
        client_id: &str,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<(String, Claims), OidcError> {
        let endpoints = self.endpoints().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", code_verifier),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let resp = self
            .client
            .post(&endpoints.token_endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcError::Issuer(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(OidcError::Refused(format!("the issuer refused the code ({})", resp.status())));
        }
        let answer: TokenAnswer = resp.json().await.map_err(|e| OidcError::Issuer(e.to_string()))?;
        let token =
            answer.id_token.ok_or_else(|| OidcError::Refused("the issuer's answer holds no id_token".into()))?;
        let claims = self.verify(&token).await?;
        Ok((token, claims))
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
        if let (Some(authorization_endpoint), Some(token_endpoint)) =
            (discovery.authorization_endpoint.clone(), discovery.token_endpoint.clone())
        {
            *self.endpoints.write().await = Some(Endpoints { authorization_endpoint, token_endpoint });
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
