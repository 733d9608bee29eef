//! `batchfan alerts SPEC`: the alerts published on a pipeline's alerts topic.

use super::out::outln;
use std::path::PathBuf;

use serde_json::json;

use super::{inputs, Output, StateArgs};
use crate::{backend::LocalLayout, topic::bus::Bus};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline spec (its `alerts.topic` is read).
    spec: PathBuf,
    #[command(flatten)]
    state: StateArgs,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let spec = inputs::load_spec(&args.spec)?;
    let bus = Bus::open(&LocalLayout::new(&args.state.dir).bus(), Default::default()).await?;
    let alerts = bus.messages(&spec.alerts.topic).await?;
    bus.close();
    match args.output {
        Output::Json => {
            let v: Vec<_> = alerts
                .iter()
                .map(|a| {
                    json!({
                        "message_id": a.message_id, "published_at": a.published_at,
                        "subject": a.message.subject, "attributes": a.message.attributes,
                        "body": serde_json::from_str::<serde_json::Value>(&a.message.body).unwrap_or_else(|_| a.message.body.clone().into()),
                    })
                })
                .collect();
            outln!("{}", json!(v));
        }
        Output::Text => {
            for a in &alerts {
                let when = chrono::DateTime::from_timestamp_millis(a.published_at)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                outln!("{when}  {}", a.message.subject.as_deref().unwrap_or("(no subject)"));
            }
            if alerts.is_empty() {
                eprintln!("no alerts on topic {}", spec.alerts.topic);
            }
        }
    }
    Ok(0)
}
