//! HTTP for classroom-relay: WHIP publish and WHEP watch (RFC 9725), bearer tokens,
//! the teacher/classroom pages, `/metrics`, `/healthz` and `/api/lessons`.
//!
//! Request checks ([`api`]), tokens ([`token`]) and metrics rendering ([`metrics`])
//! are plain functions; [`server`] is the thin axum layer.

pub mod api;
pub mod metrics;
mod pages;
pub mod schools;
pub mod server;
pub mod status;
pub mod token;

pub use server::{router, HttpConfig};
