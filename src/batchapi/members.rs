//! Which members of the Batch service model the job operations know, and
//! what happens to those the local engine does not emulate: refused with a
//! `ClientException` naming the member when they would change what runs
//! ([`NOT_EMULATED`]), accepted and ignored when they only tune AWS's
//! scheduling ([`IGNORED`]). [`request_shapes`] lists, per service model
//! shape, the members our request types deserialize — read from the types
//! themselves — so a test can walk botocore's model and find any gap.

use serde::{
    de::{self, Visitor},
    Deserialize,
};

use super::{
    error::{ApiError, ApiResult},
    jobs::{DescribeJobsRequest, Filter, ListJobsRequest, StopRequest},
    model::{
        ArrayPropertiesIn, ContainerOverridesIn, DependencyIn, EvaluateOnExitIn, JobTimeout, KeyValuePair,
        ResourceRequirement, RetryStrategyIn, SubmitJobRequest,
    },
};

/// (service model shape, member, why): members refused with a ClientException.
pub const NOT_EMULATED: &[(&str, &str, &str)] = &[
    (
        "SubmitJobRequest",
        "nodeOverrides",
        "multi-node parallel jobs are not emulated: submit a container job",
    ),
    ("SubmitJobRequest", "eksPropertiesOverride", "Amazon EKS jobs are not emulated: submit a container job"),
    (
        "SubmitJobRequest",
        "ecsPropertiesOverride",
        "ECS task properties (several containers) are not emulated: use containerOverrides",
    ),
    (
        "SubmitJobRequest",
        "consumableResourcePropertiesOverride",
        "consumable resources are not emulated: leave them out locally",
    ),
    (
        "ListJobsRequest",
        "multiNodeJobId",
        "multi-node parallel jobs are not emulated: list by jobQueue or arrayJobId",
    ),
];

/// (service model shape, member, why): members accepted and ignored.
pub const IGNORED: &[(&str, &str, &str)] = &[
    ("SubmitJobRequest", "shareIdentifier", "fair-share scheduling is not emulated: each queue runs FIFO"),
    (
        "SubmitJobRequest",
        "schedulingPriorityOverride",
        "fair-share scheduling is not emulated (the value is still checked: 0 to 9999)",
    ),
    ("ContainerOverrides", "instanceType", "applies to multi-node parallel jobs only"),
];

/// The `why` of a refused member, as the error message's fix.
fn refused(shape: &str, member: &str) -> ApiError {
    let why = NOT_EMULATED.iter().find(|(s, m, _)| *s == shape && *m == member).map_or("", |(_, _, w)| *w);
    ApiError::client(format!("{member} is not supported by batchfan batch-api: {why}"))
}

/// Refuses a submission that sets a member the engine does not emulate.
pub(crate) fn check_submit(req: &SubmitJobRequest) -> ApiResult<()> {
    let set = [
        ("nodeOverrides", req.node_overrides.is_some()),
        ("eksPropertiesOverride", req.eks_properties_override.is_some()),
        ("ecsPropertiesOverride", req.ecs_properties_override.is_some()),
        ("consumableResourcePropertiesOverride", req.consumable_resource_properties_override.is_some()),
    ];
    match set.iter().find(|(_, present)| *present) {
        Some((member, _)) => Err(refused("SubmitJobRequest", member)),
        None => Ok(()),
    }
}

/// Refuses a ListJobs `multiNodeJobId`.
pub(crate) fn check_list(multi_node_job_id: Option<&String>) -> ApiResult<()> {
    match multi_node_job_id {
        Some(_) => Err(refused("ListJobsRequest", "multiNodeJobId")),
        None => Ok(()),
    }
}

/// A deserializer that only records the field names a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The member names `T` deserializes (after renames).
fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The error is the point: the struct stops after naming its fields.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// Per service model shape of the job operations' inputs, the members our
/// request types deserialize.
pub fn request_shapes() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("SubmitJobRequest", fields_of::<SubmitJobRequest>()),
        ("ArrayProperties", fields_of::<ArrayPropertiesIn>()),
        ("JobDependency", fields_of::<DependencyIn>()),
        ("ContainerOverrides", fields_of::<ContainerOverridesIn>()),
        ("KeyValuePair", fields_of::<KeyValuePair>()),
        ("ResourceRequirement", fields_of::<ResourceRequirement>()),
        ("RetryStrategy", fields_of::<RetryStrategyIn>()),
        ("EvaluateOnExit", fields_of::<EvaluateOnExitIn>()),
        ("JobTimeout", fields_of::<JobTimeout>()),
        ("DescribeJobsRequest", fields_of::<DescribeJobsRequest>()),
        ("ListJobsRequest", fields_of::<ListJobsRequest>()),
        ("KeyValuesPair", fields_of::<Filter>()),
        ("TerminateJobRequest", fields_of::<StopRequest>()),
        ("CancelJobRequest", fields_of::<StopRequest>()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_types() {
        let shapes = request_shapes();
        let submit = shapes.iter().find(|(s, _)| *s == "SubmitJobRequest").unwrap().1;
        assert!(submit.contains(&"jobName") && submit.contains(&"eksPropertiesOverride"), "{submit:?}");
        let dep = shapes.iter().find(|(s, _)| *s == "JobDependency").unwrap().1;
        assert_eq!(dep, ["jobId", "type"]);
        for (shape, member, _) in NOT_EMULATED.iter().chain(IGNORED) {
            let known = shapes.iter().find(|(s, _)| s == shape).unwrap().1;
            assert!(
                known.contains(member),
                "{shape}.{member} must still be deserialized to be refused or ignored"
            );
        }
    }
}
