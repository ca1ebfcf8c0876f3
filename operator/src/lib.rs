//! The Weft operator as a library, so its binary and its tests share one implementation.

pub mod admin;
pub mod assignments;
pub mod claims;
pub mod claims_index;
pub mod context;
pub mod controllers;
pub mod crdgen;
pub mod deployment_controller;
pub mod deployment_status;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod host_controller;
pub mod leader;
pub mod lease_clock;
pub mod metrics;
pub mod replica_changes;
pub mod revisions;
pub mod rollout;
pub mod scheduler;
pub mod selector;
pub mod status;
pub mod uninstall;
pub mod workload_controller;
