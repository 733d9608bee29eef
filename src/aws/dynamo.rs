//! The DynamoDB [`Table`]: `table` is the DynamoDB table name; every table has
//! string keys `pk` (hash) and `sk` (range).
//!
//! | port | DynamoDB |
//! | --- | --- |
//! | `put` | PutItem; a [`Condition`] becomes a ConditionExpression, and a failed one answers [`Written::ConditionFailed`] with the item as it is (ReturnValuesOnConditionCheckFailure = ALL_OLD) |
//! | `get` | GetItem, strongly consistent |
//! | `put_batch`, `delete_batch` | BatchWriteItem in 25s, 8 calls in flight, UnprocessedItems and retryable failures (throttled, timed out, 5xx) resent with backoff and full jitter (10 tries, then [`PortError::Throttled`] or [`PortError::Unavailable`] naming how many items were left) |
//! | `query` | Query `pk = :pk AND begins_with(sk, :prefix)`, strongly consistent, every page (LastEvaluatedKey) |
//! | `delete` | DeleteItem |
//!
//! Names, keys, and item sizes are checked before anything is sent, by the
//! same rules (and with the same messages) as the local SQLite table, so a
//! batch with one bad item writes nothing. Like the local table, a batch is
//! not atomic as a whole: a failure part way (after the retries) can leave
//! some chunks written. Within one batch the last write to a key wins.

mod batch;
pub use batch::IN_FLIGHT as BATCH_WRITES_IN_FLIGHT;
pub(crate) mod value;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    operation::put_item::PutItemError,
    types::{AttributeValue, DeleteRequest, PutRequest, ReturnValuesOnConditionCheckFailure, WriteRequest},
    Client,
};
use tokio::task::JoinSet;

use self::{
    batch::{chunks, dedupe_last, send_until_processed, IN_FLIGHT},
    value::{from_item, to_attr, to_item, to_key},
};
use crate::{
    aws::error::port_error,
    backoff::Backoff,
    error::{PortError, PortResult},
    table::{check, Condition, Item, Key, Table, Written, PK},
};

/// The DynamoDB implementation of [`Table`]. Cheap to clone.
#[derive(Clone)]
pub struct AwsTable {
    client: Client,
}

impl AwsTable {
    pub(crate) fn new(client: Client) -> Self {
        AwsTable { client }
    }

    /// The item at `key`, read strongly consistently.
    async fn read(&self, table: &str, key: &Key) -> PortResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(to_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error(&format!("dynamodb GetItem on table {table}"), e))?;
        out.item.map(from_item).transpose()
    }

    /// Writes every request, 25 per call, [`IN_FLIGHT`] calls at a time.
    async fn write_all(&self, table: &str, requests: Vec<WriteRequest>) -> PortResult<()> {
        let what = format!("dynamodb BatchWriteItem on table {table}");
        let mut tasks = JoinSet::new();
        let mut first_error = None;
        for chunk in chunks(requests) {
            if tasks.len() >= IN_FLIGHT {
                note(&mut first_error, tasks.join_next().await);
            }
            if first_error.is_some() {
                break;
            }
            let (client, table, what) = (self.client.clone(), table.to_owned(), what.clone());
            tasks.spawn(async move {
                send_until_processed(&what, chunk, Backoff::BATCH_WRITE, |chunk| {
                    write_once(&client, &table, &what, chunk)
                })
                .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            note(&mut first_error, Some(done));
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Keeps the first error of the finished chunk tasks.
fn note(first: &mut Option<PortError>, done: Option<Result<PortResult<()>, tokio::task::JoinError>>) {
    let err = match done {
        Some(Ok(Err(e))) => e,
        Some(Err(e)) => PortError::backend(format!("a batch write task failed: {e}")),
        _ => return,
    };
    first.get_or_insert(err);
}

/// One BatchWriteItem call; returns the requests left unprocessed.
async fn write_once(
    client: &Client,
    table: &str,
    what: &str,
    chunk: Vec<WriteRequest>,
) -> PortResult<Vec<WriteRequest>> {
    let out = client
        .batch_write_item()
        .request_items(table, chunk)
        .send()
        .await
        .map_err(|e| port_error(what, e))?;
    Ok(out.unprocessed_items.and_then(|mut left| left.remove(table)).unwrap_or_default())
}

/// Checks an item by the local table's rules and encodes it.
fn encode(item: &Item) -> PortResult<HashMap<String, AttributeValue>> {
    check::item_shape(item)?;
    let attrs = serde_json::to_vec(&item.attrs)
        .map_err(|e| PortError::invalid(format!("cannot encode item attributes: {e}")).caused_by(e))?;
    check::item_size(&item.key, attrs.len())?;
    to_item(item)
}

/// A ConditionExpression with its attribute names and values.
#[derive(Debug, PartialEq)]
struct Expression {
    text: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// The ConditionExpression of a condition, with its names and values.
fn condition_expression(condition: &Condition) -> PortResult<Option<Expression>> {
    let on = |text: &str, attr: Option<(&str, &serde_json::Value)>, with_key: bool| {
        // DynamoDB refuses names and values the expression does not use.
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        if with_key {
            names.insert("#k".to_owned(), PK.to_owned());
        }
        if let Some((name, value)) = attr {
            names.insert("#a".to_owned(), name.to_owned());
            values.insert(":v".to_owned(), to_attr(name, value)?);
        }
        Ok::<_, PortError>(Some(Expression { text: text.to_owned(), names, values }))
    };
    match condition {
        Condition::None => Ok(None),
        Condition::NotExists => on("attribute_not_exists(#k)", None, true),
        Condition::Equals(attr, v) => on("#a = :v", Some((attr, v)), false),
        Condition::NotExistsOrEquals(attr, v) => {
            on("attribute_not_exists(#k) OR #a = :v", Some((attr, v)), true)
        }
    }
}

#[async_trait]
impl Table for AwsTable {
    async fn put(&self, table: &str, item: Item, condition: Condition) -> PortResult<Written> {
        check::table_name(table)?;
        let map = encode(&item)?;
        let what = format!("dynamodb PutItem on table {table}");
        let mut request = self.client.put_item().table_name(table).set_item(Some(map));
        if let Some(Expression { text, names, values }) = condition_expression(&condition)? {
            request = request
                .condition_expression(text)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values((!values.is_empty()).then_some(values))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        }
        let err = match request.send().await {
            Ok(_) => return Ok(Written::Yes),
            Err(e) => e,
        };
        let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error() else {
            return Err(port_error(&what, err));
        };
        let current = match failed.item.clone() {
            Some(old) => Some(from_item(old)?),
            // A server that does not return the old item: read it.
            None => self.read(table, &item.key).await?,
        };
        Ok(Written::ConditionFailed(current))
    }

    async fn get(&self, table: &str, key: &Key) -> PortResult<Option<Item>> {
        check::table_name(table)?;
        check::key(key)?;
        self.read(table, key).await
    }

    async fn put_batch(&self, table: &str, items: Vec<Item>) -> PortResult<()> {
        check::table_name(table)?;
        let items = dedupe_last(items, |i| &i.key);
        let mut requests = Vec::with_capacity(items.len());
        for item in &items {
            let put = PutRequest::builder()
                .set_item(Some(encode(item)?))
                .build()
                .map_err(|e| PortError::backend(format!("cannot build a put request: {e}")).caused_by(e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.write_all(table, requests).await
    }

    async fn query(&self, table: &str, pk: &str, sk_prefix: &str) -> PortResult<Vec<Item>> {
        check::table_name(table)?;
        if pk.is_empty() {
            return Err(PortError::invalid("query has an empty pk: pass the partition key to read"));
        }
        let what = format!("dynamodb Query on table {table}");
        let mut names = HashMap::from([("#pk".to_owned(), PK.to_owned())]);
        let mut values = HashMap::from([(":pk".to_owned(), AttributeValue::S(pk.to_owned()))]);
        let mut expr = "#pk = :pk".to_owned();
        if !sk_prefix.is_empty() {
            expr.push_str(" AND begins_with(#sk, :prefix)");
            names.insert("#sk".to_owned(), crate::table::SK.to_owned());
            values.insert(":prefix".to_owned(), AttributeValue::S(sk_prefix.to_owned()));
        }
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression(&expr)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| port_error(&what, e))?;
            for item in out.items.unwrap_or_default() {
                items.push(from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    async fn delete(&self, table: &str, key: &Key) -> PortResult<()> {
        check::table_name(table)?;
        check::key(key)?;
        self.client
            .delete_item()
            .table_name(table)
            .set_key(Some(to_key(key)))
            .send()
            .await
            .map_err(|e| port_error(&format!("dynamodb DeleteItem on table {table}"), e))?;
        Ok(())
    }

    async fn delete_batch(&self, table: &str, keys: Vec<Key>) -> PortResult<()> {
        keys.iter().try_for_each(check::key)?;
        check::table_name(table)?;
        let keys = dedupe_last(keys, |k| k);
        let mut requests = Vec::with_capacity(keys.len());
        for key in &keys {
            let delete = DeleteRequest::builder().set_key(Some(to_key(key))).build().map_err(|e| {
                PortError::backend(format!("cannot build a delete request: {e}")).caused_by(e)
            })?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.write_all(table, requests).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conditions_become_expressions() {
        assert_eq!(condition_expression(&Condition::None).unwrap(), None);
        let e = condition_expression(&Condition::NotExists).unwrap().unwrap();
        assert_eq!(
            (e.text.as_str(), e.names["#k"].as_str(), e.values.len()),
            ("attribute_not_exists(#k)", "pk", 0)
        );
        let e = condition_expression(&Condition::Equals("version".into(), json!(3))).unwrap().unwrap();
        assert_eq!(e.text, "#a = :v");
        assert_eq!(
            e.names,
            HashMap::from([("#a".to_owned(), "version".to_owned())]),
            "only the names it uses"
        );
        assert_eq!(e.values[":v"], AttributeValue::N("3".into()));
        let e = condition_expression(&Condition::NotExistsOrEquals("state".into(), json!("open")))
            .unwrap()
            .unwrap();
        assert_eq!(e.text, "attribute_not_exists(#k) OR #a = :v");
        assert_eq!(e.names.len(), 2);
        assert_eq!(e.values[":v"], AttributeValue::S("open".into()));
    }

    #[test]
    fn encode_applies_the_local_tables_rules() {
        let big = Item::new(Key::new("p", "s")).with("blob", "x".repeat(crate::table::MAX_ITEM_BYTES));
        assert!(matches!(encode(&big), Err(PortError::Invalid(m)) if m.contains("bytes")));
        let shadow = Item::new(Key::new("p", "s")).with("sk", "x");
        assert!(matches!(encode(&shadow), Err(PortError::Invalid(m)) if m.contains("sk")));
        assert_eq!(encode(&Item::new(Key::new("p", "s")).with("n", 1)).unwrap().len(), 3);
    }
}
