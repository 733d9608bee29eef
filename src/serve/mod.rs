//! `batchfan serve`: one long-lived process that owns the embedded backend and
//! starts runs from cron schedules, object puts, signed webhooks and the status
//! page's Run button (and `batchfan trigger`); with `--batch-api`, it also
//! serves the AWS Batch API over the same engine (one capacity, one state
//! directory) and shows the API's jobs on the status page.
//!
//! | part | what |
//! | --- | --- |
//! | [`cron_task`] | one task per cron pipeline: slots → runs, state in the table |
//! | [`s3_put`] | which objects are new and complete (pure) |
//! | [`s3_put_task`] | one task per S3 pipeline: polls the bucket → runs |
//! | [`http`] | the HTTP server: webhooks, the JSON API, the status pages |
//! | [`guard`] | the middleware in front of it: `Host` check, login, security headers |
//! | [`input`] | which inputs the pages and the API may name (`--allow-input`) |
//! | [`view`], [`page`], [`assets`] | what the pages and the JSON API show, the HTML, its stylesheet and script |
//! | [`run_view`], [`run_page`], [`timeline`], [`child_view`], [`child_page`], [`history`], [`runs_http`] | a run's page (grids, timings, timeline, failed children), a child's page, the history grid, their routes |
//! | [`discovery`] | `serve.json` in the state directory: how `batchfan trigger` finds the service |
//! | [`jobs`], [`jobs_page`], [`jobs_http`] | the Jobs view: jobs submitted through `--batch-api`, their attempts and logs |
//! | [`app`] | the shared state and the one place triggers go through; [`app::lifecycle`]: start, serve, drain |
//! | [`site`], [`source`] | what every serve's pages need: the login ([`site::Gate`]) and where runs, jobs and logs are read from |
//! | [`deployed`] | `--backend aws`: the same pages, read-only, over DynamoDB, Batch and CloudWatch Logs |

pub mod actions;
pub mod app;
pub mod assets;
pub mod child_page;
pub mod child_view;
pub mod cron_task;
pub mod deployed;
pub mod discovery;
pub mod error;
pub mod guard;
pub mod history;
pub mod http;
pub mod input;
pub mod jobs;
pub mod jobs_http;
pub mod jobs_page;
pub mod page;
pub mod run_page;
pub mod run_view;
pub mod runs_http;
pub mod s3_put;
pub mod s3_put_task;
pub mod site;
pub mod source;
pub mod timeline;
pub mod view;

// The schedule rules live with the other trigger rules (the trigger Lambda shares them).
pub use self::{
    app::{run, App, BatchApiDoor, Ready, ServeConfig},
    error::ServeError,
};
use crate::trigger::cron;
