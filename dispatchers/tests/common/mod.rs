#![allow(dead_code)]

#[path = "../../../tests/support/aws_fixtures.rs"]
pub mod aws_fixtures;
pub mod fixtures;
#[path = "../../../tests/support/moto.rs"]
pub mod moto;
pub mod world;
