//! The runtime's integration tests, in one binary (as Wasmtime's own `tests/all`): a binary per
//! file linked Wasmtime fourteen times over, the largest part of building the tests.

mod common;

mod blobstore;
mod capabilities;
mod components;
mod faults;
mod http;
mod isolation_clients;
mod isolation_files;
mod isolation_network;
mod isolation_resources;
mod keyvalue;
mod messaging;
mod p3;
mod plugins;
mod pools;
mod services;
