#![allow(dead_code)]

#[path = "../../../tests/support/aws_fixtures.rs"]
pub mod aws_fixtures;
pub mod fixtures;
pub(crate) use crate::moto;
pub mod world;
