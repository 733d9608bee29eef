//! A dispatcher's deployment: the environment Terraform sets, and the
//! [`Dispatcher`] (ports + spec) built from it once per cold start.
//!
//! Every variable read here is listed for its component in
//! [`batchfan::deploy::COMPONENTS`]; the names are [`batchfan::env`]'s.

use std::path::Path;

use batchfan::{backend::AwsTarget, deploy, env, objects::ObjectRef, run::Ports, spec::PipelineSpec};

use crate::DispatchError;

/// What the deployment tells a dispatcher (each component requires what it
/// reads, see [`Config::from_vars`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `BATCHFAN_SPEC_URI`: the pipeline spec (TOML) in S3.
    pub spec_uri: Option<ObjectRef>,
    /// `BATCHFAN_TABLE`, `BATCHFAN_BUCKET`, `BATCHFAN_JOB_QUEUE`,
    /// `BATCHFAN_JOB_DEFINITION_PREFIX`, `BATCHFAN_PLAN_TOPIC_ARN`,
    /// `BATCHFAN_ALERTS_TOPIC_ARN`: the deployment's names over the spec's.
    pub target: AwsTarget,
    /// `BATCHFAN_WEBHOOK_SECRET_PARAMETER`: the SSM SecureString holding the webhook secret.
    pub webhook_secret_parameter: Option<String>,
    /// `BATCHFAN_JOB_LOG_GROUP`: the job logs' CloudWatch Logs group (the
    /// alert's log pointer names it; AWS Batch's `/aws/batch/job` when unset).
    pub job_log_group: Option<String>,
}

impl Config {
    /// Reads the variables `component` reads (per [`deploy::COMPONENTS`]) through
    /// `var`; every one but the webhook secret parameter and the job log
    /// group is required, and a missing one is an error naming it.
    pub fn from_vars(component: &str, var: impl Fn(&str) -> Option<String>) -> Result<Config, DispatchError> {
        let c = deploy::component(component).ok_or_else(|| {
            DispatchError::Config(format!("{component:?} is not a batchfan component (see batchfan::deploy)"))
        })?;
        let mut missing = Vec::new();
        let mut get = |name: &'static str| -> Option<String> {
            if !c.env.contains(&name) {
                return None;
            }
            let v = var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
            if v.is_none() && name != env::WEBHOOK_SECRET_PARAMETER && name != env::JOB_LOG_GROUP {
                missing.push(name);
            }
            v
        };
        let spec_uri = get(env::SPEC_URI);
        let target = AwsTarget {
            region: None,
            table: get(env::TABLE),
            bucket: get(env::BUCKET),
            job_queue: get(env::JOB_QUEUE),
            job_definition_prefix: get(env::JOB_DEFINITION_PREFIX),
            plan_topic_arn: get(env::PLAN_TOPIC_ARN),
            alerts_topic_arn: get(env::ALERTS_TOPIC_ARN),
        };
        let webhook_secret_parameter = get(env::WEBHOOK_SECRET_PARAMETER);
        let job_log_group = get(env::JOB_LOG_GROUP);
        if !missing.is_empty() {
            return Err(DispatchError::Config(format!(
                "the {component} function needs {} set: the pipeline's Terraform module sets them",
                missing.join(", ")
            )));
        }
        let spec_uri = match spec_uri {
            Some(uri) => Some(uri.parse::<ObjectRef>().map_err(|e| {
                DispatchError::Config(format!("{}={uri:?}: {e} (write s3://bucket/key)", env::SPEC_URI))
            })?),
            None => None,
        };
        Ok(Config { spec_uri, target, webhook_secret_parameter, job_log_group })
    }

    /// Reads the process environment for `component`.
    pub fn from_env(component: &str) -> Result<Config, DispatchError> {
        Config::from_vars(component, |name| std::env::var(name).ok())
    }
}

/// What every handler runs with: the ports (AWS adapters, built once) and the
/// pipeline's spec with the deployment's names applied.
#[derive(Clone)]
pub struct Dispatcher {
    pub ports: Ports,
    pub spec: PipelineSpec,
    pub config: Config,
}

impl Dispatcher {
    /// Applies `config` over `spec` and routes the topics of `ports`.
    pub fn new(config: Config, mut ports: Ports, mut spec: PipelineSpec) -> Dispatcher {
        config.target.apply(&mut spec);
        config.target.route_topics(&spec, &mut ports);
        Dispatcher { ports, spec, config }
    }

    /// Loads the spec named by `config.spec_uri` through the objects port, then [`Dispatcher::new`].
    pub async fn load(config: Config, ports: Ports) -> Result<Dispatcher, DispatchError> {
        let uri = config.spec_uri.clone().ok_or_else(|| {
            DispatchError::Config(format!("{} is not set: point it at the pipeline's spec", env::SPEC_URI))
        })?;
        let spec = load_spec(&ports, &uri).await?;
        Ok(Dispatcher::new(config, ports, spec))
    }
}

/// What a Lambda binary builds at cold start: its configuration, the SDK's,
/// the AWS adapters and the spec.
pub struct ColdStart {
    pub dispatcher: Dispatcher,
    pub sdk_config: aws_config::SdkConfig,
    /// The clients behind the dispatcher's ports (their API-call tally).
    pub clients: batchfan::aws::AwsClients,
}

impl Dispatcher {
    /// Reads the environment of `component`, loads the SDK's configuration
    /// (the function's role, region and any `AWS_ENDPOINT_URL*` overrides),
    /// builds the AWS adapters once and loads the spec from `BATCHFAN_SPEC_URI`.
    pub async fn from_env(component: &str) -> Result<ColdStart, DispatchError> {
        let config = Config::from_env(component)?;
        let sdk_config = batchfan::aws::load_sdk_config(None).await;
        let mut settings = batchfan::aws::AwsSettings::default();
        if let Some(group) = &config.job_log_group {
            settings.log_group = group.clone();
        }
        let clients = batchfan::aws::AwsClients::from_sdk_config(&sdk_config, settings)
            .map_err(|e| DispatchError::Config(e.to_string()))?;
        let dispatcher = Dispatcher::load(config, batchfan::backend::ports_on_aws(&clients)).await?;
        Ok(ColdStart { dispatcher, sdk_config, clients })
    }
}

/// Reads and validates the spec at `uri`.
pub async fn load_spec(ports: &Ports, uri: &ObjectRef) -> Result<PipelineSpec, DispatchError> {
    let bytes =
        ports.objects.get(uri).await.map_err(|e| {
            DispatchError::Config(format!("cannot read the spec {uri} ({}): {e}", env::SPEC_URI))
        })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| DispatchError::Config(format!("the spec {uri} is not UTF-8 text")))?;
    batchfan::spec::load_str(&text, &uri.to_string(), Path::new("."))
        .map_err(|e| DispatchError::Config(format!("the spec {uri} is not valid:\n{e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn each_component_requires_what_it_reads_and_names_what_is_missing() {
        let err = Config::from_vars("submit", vars(&[(env::SPEC_URI, "s3://bkt/spec.toml")])).unwrap_err();
        let msg = err.to_string();
        for name in [env::TABLE, env::BUCKET, env::JOB_QUEUE, env::JOB_DEFINITION_PREFIX] {
            assert!(msg.contains(name), "{msg}");
        }
        assert!(!msg.contains(env::PLAN_TOPIC_ARN), "{msg}");
        let c = Config::from_vars(
            "trigger",
            vars(&[
                (env::SPEC_URI, "s3://bkt/spec.toml"),
                (env::TABLE, "t"),
                (env::BUCKET, "b"),
                (env::PLAN_TOPIC_ARN, "arn:aws:sns:us-east-1:1:p-plan"),
                (env::JOB_QUEUE, "not read by the trigger"),
            ]),
        )
        .unwrap();
        assert_eq!(c.spec_uri, Some(ObjectRef::new("bkt", "spec.toml")));
        assert_eq!(c.target.job_queue, None, "the trigger does not read the queue");
        assert_eq!(c.target.plan_topic_arn.as_deref(), Some("arn:aws:sns:us-east-1:1:p-plan"));
        assert_eq!(c.webhook_secret_parameter, None, "optional");
        let err = Config::from_vars(
            "alert",
            vars(&[
                (env::SPEC_URI, "bkt/spec.toml"),
                (env::TABLE, "t"),
                (env::BUCKET, "bkt"),
                (env::JOB_QUEUE, "q"),
                (env::JOB_DEFINITION_PREFIX, "p-"),
                (env::ALERTS_TOPIC_ARN, "arn:aws:sns:us-east-1:1:p-alerts"),
                (env::PLAN_TOPIC_ARN, "arn:aws:sns:us-east-1:1:p-plan"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"bkt/spec.toml\""), "{err}");
        assert!(Config::from_vars("nope", vars(&[])).is_err());
    }

    #[test]
    fn the_deployment_overrides_the_spec() {
        let text =
            "name = \"p\"\n[planner]\nstrategy = \"range\"\n[[stages]]\nname = \"a\"\ncommand = [\"a\"]\n";
        let mut spec = batchfan::spec::load_str(text, "p.toml", Path::new(".")).unwrap();
        assert_eq!(spec.job_definition_prefix, "p-");
        let c = AwsTarget {
            table: Some("tbl".into()),
            bucket: Some("bkt".into()),
            job_queue: Some("q".into()),
            job_definition_prefix: Some("pre-".into()),
            ..Default::default()
        };
        c.apply(&mut spec);
        assert_eq!(
            (spec.storage.table.as_str(), spec.storage.bucket.as_str(), spec.job_queue.as_str()),
            ("tbl", "bkt", "q")
        );
        assert_eq!(spec.job_definition_prefix, "pre-");
    }
}
