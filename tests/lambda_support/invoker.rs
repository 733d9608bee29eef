//! Lambda's asynchronous invoker (the path of S3 notifications, SNS
//! deliveries and EventBridge rules): the event is tried once and retried
//! `MaximumRetryAttempts` times (the function's event invoke config, read
//! back from moto; Lambda's default 2) under the same request id; when every
//! attempt failed, the event goes to the function's dead-letter queue (an SQS
//! queue or SNS topic, for real in moto) with Lambda's message attributes
//! `RequestID`, `ErrorCode` and `ErrorMessage`.
//!
//! Lambda waits about 1 then 2 minutes between attempts; the harness retries
//! at once (the tests assert outcomes, never durations).

use aws_sdk_sqs::types::MessageAttributeValue;
use serde_json::Value;

use super::{
    aws_fixtures::Fixtures,
    function::{request_id, Function, Invocation, Outcome},
};

/// Lambda keeps the first 1 KB of the error message in the dead letter.
const ERROR_MESSAGE_LIMIT: usize = 1024;

/// What an asynchronous invocation came to.
#[derive(Debug)]
pub struct AsyncInvocation {
    pub request_id: String,
    /// Every attempt, in order.
    pub attempts: Vec<Invocation>,
    /// The dead letter's message id, when every attempt failed.
    pub dead_letter: Option<String>,
}

/// Invokes `function` asynchronously (InvocationType `Event`) with `payload`.
pub async fn invoke_async(function: &mut Function, fx: &Fixtures, payload: &Value) -> AsyncInvocation {
    let id = request_id();
    let mut attempts = Vec::new();
    for _ in 0..=function.config.max_retry_attempts {
        let attempt = function.invoke(&id, payload).await;
        let succeeded = matches!(attempt.outcome, Outcome::Response(_));
        attempts.push(attempt);
        if succeeded {
            return AsyncInvocation { request_id: id, attempts, dead_letter: None };
        }
    }
    let (_, message) = attempts.last().expect("one attempt at least").error();
    let message: String = message.chars().take(ERROR_MESSAGE_LIMIT).collect();
    let dead_letter = match &function.config.dead_letter_target {
        Some(target) => Some(dead_letter(fx, target, &id, &message, payload).await),
        None => None,
    };
    AsyncInvocation { request_id: id, attempts, dead_letter }
}

/// Sends the failed event to `target` as Lambda does; returns the message id.
async fn dead_letter(
    fx: &Fixtures,
    target: &str,
    request_id: &str,
    message: &str,
    payload: &Value,
) -> String {
    let body = payload.to_string();
    // ErrorCode: the HTTP status of the failed invocation (200: a function error).
    let attributes = [
        ("RequestID", "String", request_id),
        ("ErrorCode", "Number", "200"),
        ("ErrorMessage", "String", message),
    ];
    if target.starts_with("arn:aws:sqs:") {
        let name = target.rsplit(':').next().expect("a queue name");
        let url =
            fx.sqs.get_queue_url().queue_name(name).send().await.expect("the dead-letter queue").queue_url;
        let mut send = fx.sqs.send_message().set_queue_url(url).message_body(body);
        for (k, t, v) in attributes {
            let value =
                MessageAttributeValue::builder().data_type(t).string_value(v).build().expect("an attribute");
            send = send.message_attributes(k, value);
        }
        return send.send().await.expect("send the dead letter").message_id.expect("a message id");
    }
    assert!(
        target.starts_with("arn:aws:sns:"),
        "a dead-letter target is an SQS queue or an SNS topic, not {target}"
    );
    let mut publish = fx.sns.publish().topic_arn(target).message(body);
    for (k, t, v) in attributes {
        let value = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type(t)
            .string_value(v)
            .build()
            .expect("an attribute");
        publish = publish.message_attributes(k, value);
    }
    publish.send().await.expect("publish the dead letter").message_id.expect("a message id")
}
