//! drip's integration tests: one binary, a module per part of the data flow. Database tests
//! run on SQLite and on PostgreSQL (DRIP_TEST_POSTGRES_URL); mail goes over SMTP to a real
//! server in the process.

mod support;

mod admin;
mod answers;
mod backup;
mod bad_input;
mod broadcasts;
mod browser;
mod cli;
mod courses;
mod curriculum;
mod delivery;
mod dkim;
mod edge;
mod faults;
mod inbound;
mod languages;
mod openapi;
mod pipelining;
mod privacy;
mod relay_tls;
mod render;
mod scale;
mod storage;
mod upgrade;
mod web_public;
mod webhooks;
