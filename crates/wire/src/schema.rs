//! Schemas of fields the server reads as text or any JSON and checks itself, so that a bad value is answered with
//! the API's own error naming the field (`openapi` feature).

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

fn one_of_strings(values: &[&str]) -> Schema {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied())).into()
}

/// GitLab's deployment tiers.
pub fn tier() -> Schema {
    one_of_strings(&["production", "staging", "testing", "development", "other"])
}

/// What a deploy does when a lock is in the way.
pub fn lock_behavior() -> Schema {
    one_of_strings(&["fail", "queue", "ignore"])
}

/// A deployment's status (Aviator's).
pub fn deployment_status() -> Schema {
    one_of_strings(&["pending", "in_progress", "success", "failure", "canceling", "canceled", "unknown"])
}

/// A release version: `3` or `"3"`.
pub fn version() -> Schema {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
        .item(ObjectBuilder::new().schema_type(Type::String))
        .into()
}
