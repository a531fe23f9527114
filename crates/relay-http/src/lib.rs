//! HTTP for classroom-relay: WHIP publish and WHEP watch (RFC 9725), bearer tokens,
//! the teacher/classroom pages, `/metrics`, `/healthz` and `/api/lessons`.
//!
//! Request checks ([`api`]), tokens ([`token`]) and metrics rendering ([`metrics`])
//! are plain functions; [`server`] is the thin axum layer.

pub mod api;
pub mod class_list;
mod lesson_api;
pub mod metrics;
mod pages;
pub mod schools;
pub mod serve;
pub mod server;
pub mod sessions;
pub mod status;
pub mod token;

pub use server::{router, Control, HttpConfig};

/// Every `reason` label of `classroom_relay_refused_total`.
pub const REFUSAL_REASONS: [&str; 13] = [
    "draining",
    "relay_sessions",
    "relay_lessons",
    "relay_rate",
    "address_sessions",
    "address_rate",
    "school_sessions",
    "school_rate",
    "teacher_sessions",
    "teacher_rate",
    "bad_offer",
    "bad_request",
    "token",
];
