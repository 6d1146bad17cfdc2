//! Environments (create, list, get) and the overview.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::CreateEnvironment;
use railyard_manifest::{state, EnvName, Error, GroupName, Request, Tier, Upstream};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{written, AppState};
use crate::error::ApiResult;
use crate::extract::{JsonBody, Params};

type Reply = ApiResult<(StatusCode, Json<Value>)>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    external_url: Option<String>,
    #[serde(default)]
    tier: Option<Tier>,
    #[serde(default)]
    upstream: Option<Upstream>,
    #[serde(rename = "environmentGroup", alias = "environment_group", default)]
    environment_group: Option<String>,
}

pub async fn create(State(st): State<AppState>, JsonBody(b): JsonBody<CreateBody>) -> Reply {
    let environment_group = b.environment_group.as_deref().map(GroupName::parse).transpose().map_err(Error::from)?;
    let request = CreateEnvironment {
        name: EnvName::parse(&b.name).map_err(Error::from)?,
        upstream: b.upstream,
        environment_group,
        tier: b.tier,
        external_url: b.external_url,
    };
    Ok(written(StatusCode::CREATED, st.write(Request::CreateEnvironment(request)).await?))
}

fn env_json(name: &EnvName, config: &railyard_manifest::EnvironmentConfig) -> Value {
    let mut v = json!(config);
    if let Value::Object(m) = &mut v {
        m.insert("name".into(), json!(name));
    }
    v
}

pub async fn list(State(st): State<AppState>) -> Reply {
    let envs = st.read(state::environments).await?;
    let list: Vec<Value> = envs.iter().map(|(n, c)| env_json(n, c)).collect();
    Ok((StatusCode::OK, Json(json!({ "environments": list }))))
}

pub async fn get(State(st): State<AppState>, p: Params) -> Reply {
    let env = p.get::<EnvName, _>("env")?;
    let (name, config) = st.read(move |s| Ok((env.clone(), state::require_env(s, &env)?))).await?;
    Ok((StatusCode::OK, Json(env_json(&name, &config))))
}

pub async fn overview(State(st): State<AppState>) -> Reply {
    let envs = st.read(state::overview).await?;
    Ok((StatusCode::OK, Json(json!({ "environments": envs }))))
}
