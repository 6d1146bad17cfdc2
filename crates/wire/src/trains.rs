//! `PUT /api/environments/{env}/releasetrain` and `PUT /api/environment-groups/{group}/releasetrain`: what a
//! release train moved and skipped.

use serde::{Deserialize, Serialize};

/// A train's answer (a dry run's too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Train {
    /// What happened in each target environment.
    pub environments: Vec<EnvironmentTrain>,
    /// The tag requested for the commit.
    pub tag: Option<String>,
    /// True when the train moves nothing (its commit, if any, then changes no file).
    pub empty: bool,
    /// The train's commit (none: a dry run, or an empty train with `--minimize-exported-data`).
    pub commit: Option<String>,
    /// True for a dry run: nothing was written.
    #[serde(rename = "dryRun", skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// What a train did in one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvironmentTrain {
    /// The environment moved.
    pub environment: String,
    /// Where the versions came from: the upstream environment, `latest`, or none.
    pub source: Option<String>,
    /// The applications moved.
    pub deployed: Vec<TrainMove>,
    /// The applications left as they were, each with why.
    pub skipped: Vec<TrainSkip>,
}

/// One application a train moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainMove {
    /// The application.
    pub application: String,
    /// The version deployed before (none: it was not there).
    pub from: Option<u64>,
    /// The version deployed now.
    pub to: u64,
}

/// One application a train left as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSkip {
    /// The application.
    pub application: String,
    /// Why: `environment_locked`, `application_locked`, `team_locked`, `already_deployed`, … (docs/api.md).
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_train_answer_from_the_docs_reads() {
        let text = r#"{"commit":"ac4d9880df2a48f0e1cfbbd1b8ee49c52ad4aefd","environments":[{"deployed":[{"application":"web","from":null,"to":1}],"environment":"staging","skipped":[{"application":"api","reason":"no_manifest_for_environment"}],"source":"dev"}],"empty":false,"tag":"t1"}"#;
        let train: Train = serde_json::from_str(text).expect("train");
        assert_eq!(train.commit.as_deref(), Some("ac4d9880df2a48f0e1cfbbd1b8ee49c52ad4aefd"));
        assert!(!train.dry_run && !train.empty);
        let staging = &train.environments[0];
        assert_eq!(staging.deployed, [TrainMove { application: "web".into(), from: None, to: 1 }]);
        assert_eq!(staging.skipped[0].reason, "no_manifest_for_environment");
        assert_eq!(serde_json::from_str::<serde_json::Value>(text).ok(), serde_json::to_value(&train).ok());
    }
}
