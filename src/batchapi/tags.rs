//! TagResource, UntagResource and ListTagsForResource on the ARNs this API
//! answers: compute environments, job queues, job definition revisions, jobs.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    environments::{CE, JQ},
    error::{ApiError, ApiResult},
    BatchApi,
};
use crate::batch::Batch;

/// Most tags on one resource.
const MAX_TAGS: usize = 50;

/// `TagResourceRequest` (the ARN is in the path).
#[derive(Debug, Default, Deserialize)]
pub struct TagRequest {
    tags: Option<BTreeMap<String, String>>,
}

impl BatchApi {
    /// Checks that `arn` names something that exists here.
    async fn check_arn(&self, arn: &str) -> ApiResult<()> {
        let prefix = self.arn("", "");
        let prefix = prefix.trim_end_matches('/');
        let unknown = || {
            ApiError::client(format!(
                "resourceArn {arn:?} does not exist: give the ARN of a compute environment, job queue, job definition or job of this server"
            ))
        };
        let (kind, name) = arn.strip_prefix(prefix).and_then(|r| r.split_once('/')).ok_or_else(unknown)?;
        let exists = match kind {
            CE | JQ => self.store.resource(kind, name)?.is_some(),
            "job-definition" => self.resolve_definition(arn, true).is_ok(),
            "job" => !self.engine.describe_jobs(&[name.to_string()]).await?.is_empty(),
            _ => false,
        };
        if exists {
            Ok(())
        } else {
            Err(unknown())
        }
    }

    pub(crate) async fn list_tags(&self, arn: &str) -> ApiResult<Value> {
        self.check_arn(arn).await?;
        Ok(json!({ "tags": self.store.tags(arn)? }))
    }

    pub(crate) async fn tag_resource(&self, arn: &str, req: TagRequest) -> ApiResult<Value> {
        let tags = req.tags.unwrap_or_default();
        if tags.is_empty() {
            return Err(ApiError::client("tags is required: give at least one key and value"));
        }
        self.check_arn(arn).await?;
        for (k, v) in &tags {
            if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 || k.starts_with("aws:") {
                return Err(ApiError::client(format!(
                    "tag {k:?} is not valid: keys are 1-128 characters not starting with \"aws:\", values up to 256"
                )));
            }
        }
        let mut all = self.store.tags(arn)?;
        all.extend(tags.clone());
        if all.len() > MAX_TAGS {
            return Err(ApiError::client(format!(
                "resource would have {} tags, over the AWS limit of {MAX_TAGS}: remove some first",
                all.len()
            )));
        }
        self.store.tag(arn, &tags)?;
        Ok(json!({}))
    }

    /// UntagResource: the keys come as repeated `tagKeys` query parameters.
    pub(crate) async fn untag_resource(&self, arn: &str, query: &str) -> ApiResult<Value> {
        let keys: Vec<String> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(k, _)| *k == "tagKeys")
            .map(|(_, v)| percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned())
            .collect();
        if keys.is_empty() {
            return Err(ApiError::client("tagKeys is required: give at least one tag key to remove"));
        }
        self.check_arn(arn).await?;
        self.store.untag(arn, &keys)?;
        Ok(json!({}))
    }
}
