//! `batchfan job exec -- CMD ARGS...`: runs any program as a batchfan job.
//!
//! The child's work item goes to a JSON file named by `BATCHFAN_ITEM_FILE`;
//! the program may write a JSON result to `BATCHFAN_RESULT_FILE` and its
//! output to `BATCHFAN_OUTPUT_FILE`; both are stored when it exits 0. The exit
//! code is passed on (a signal becomes 128 + signal, as a shell reports it).

use std::{os::unix::process::ExitStatusExt, path::Path};

use serde_json::{json, Value};

use super::{JobContext, JobError};
use crate::{env, run::ChildResult};

/// Runs `command` for this job; returns the exit code to exit with.
pub async fn exec(ctx: &JobContext, command: &[String]) -> Result<i32, JobError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| JobError::permanent("job exec needs a command: batchfan job exec -- CMD ARGS..."))?;
    let dir =
        tempfile::tempdir().map_err(|e| JobError::retryable(format!("cannot create a temp dir: {e}")))?;
    let item_file = dir.path().join("item.json");
    let result_file = dir.path().join("result.json");
    let output_file = dir.path().join("output");
    let run = ctx.run().await?;
    let item = if ctx.env.stage.is_some() && ctx.env.role == "stage" {
        let w = ctx.work_item().await?;
        json!({ "run": run.run_id, "pipeline": run.pipeline, "stage": ctx.env.stage, "index": w.index, "units": w.units })
    } else {
        json!({ "run": run.run_id, "pipeline": run.pipeline, "role": ctx.env.role, "output": run.output.to_string() })
    };
    tokio::fs::write(&item_file, item.to_string()).await?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env(env::ITEM_FILE, &item_file)
        .env(env::RESULT_FILE, &result_file)
        .env(env::OUTPUT_FILE, &output_file);
    for (k, v) in &run.trigger.params {
        cmd.env(format!("{}{}", env::PARAM_PREFIX, k.to_ascii_uppercase()), v);
    }
    let status = cmd.status().await.map_err(|e| {
        JobError::permanent(format!(
            "cannot run {program:?}: {e}: check the command exists and is executable"
        ))
    })?;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    if code != 0 || ctx.env.role != "stage" {
        return Ok(code);
    }
    let value = read_result(&result_file).await?;
    let output = match tokio::fs::metadata(&output_file).await {
        Ok(_) => {
            let obj = ctx.output_ref()?;
            ctx.objects().put_file(&obj, &output_file).await?;
            Some(obj)
        }
        Err(_) => None,
    };
    let items = item_units(&item);
    let failed = value.get("failed").and_then(Value::as_u64).unwrap_or(0);
    ctx.put_result(&ChildResult { value, items, failed, output }).await?;
    Ok(0)
}

fn item_units(item: &Value) -> u64 {
    item.get("units").and_then(Value::as_array).map_or(0, |u| u.len() as u64)
}

async fn read_result(path: &Path) -> Result<Value, JobError> {
    match tokio::fs::read(path).await {
        Err(_) => Ok(Value::Null),
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Value::Null),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            JobError::permanent(format!(
                "the result file ({}) is not JSON: {e}: write a JSON value, or nothing",
                env::RESULT_FILE
            ))
        }),
    }
}
