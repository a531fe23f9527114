//! `limits`: how much one client, one school, one teacher token and the whole relay
//! may ask for. Over a limit a client gets `429` (its own share is used up) or `503`
//! with `Retry-After` (the relay is full); see the README's "Limits and failures".

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Problem;

/// Session and connection limits. "New per second" limits allow a burst of twice
/// the rate, so a school whose classrooms all reconnect at once is not refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Open WebRTC sessions (teachers and classrooms) on the relay; over it: 503.
    #[serde(default = "d_sessions")]
    pub sessions: u32,
    /// New sessions per second on the whole relay; over it: 503.
    #[serde(default = "d_new_sessions")]
    pub new_sessions_per_second: u32,
    /// Lessons with at least one session; a new lesson over it: 503.
    #[serde(default = "d_lessons")]
    pub lessons: u32,
    /// Open classroom sessions of one school (the token's school); over it: 429.
    #[serde(default = "d_school_sessions")]
    pub school_sessions: u32,
    /// New classroom sessions per second of one school; over it: 429.
    #[serde(default = "d_two")]
    pub school_new_per_second: u32,
    /// Open sessions of one teacher token (publishing and hearing the floor; a
    /// reconnect replaces the old one); over it: 429.
    #[serde(default = "d_teacher_sessions")]
    pub teacher_sessions: u32,
    /// New sessions per second of one teacher token; over it: 429.
    #[serde(default = "d_two")]
    pub teacher_new_per_second: u32,
    /// Open sessions from one client IP address; over it: 429.
    #[serde(default = "d_address_sessions")]
    pub address_sessions: u32,
    /// New sessions per second from one client IP address; over it: 429.
    #[serde(default = "d_address_new")]
    pub address_new_per_second: u32,
    /// Open HTTP connections; more wait until one closes. A connection that has not
    /// sent its request headers within 10 s is closed.
    #[serde(default = "d_http_connections")]
    pub http_connections: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            sessions: d_sessions(),
            new_sessions_per_second: d_new_sessions(),
            lessons: d_lessons(),
            school_sessions: d_school_sessions(),
            school_new_per_second: d_two(),
            teacher_sessions: d_teacher_sessions(),
            teacher_new_per_second: d_two(),
            address_sessions: d_address_sessions(),
            address_new_per_second: d_address_new(),
            http_connections: d_http_connections(),
        }
    }
}

fn d_sessions() -> u32 {
    1000
}
fn d_new_sessions() -> u32 {
    50
}
fn d_lessons() -> u32 {
    200
}
fn d_school_sessions() -> u32 {
    8
}
fn d_two() -> u32 {
    2
}
fn d_teacher_sessions() -> u32 {
    4
}
fn d_address_sessions() -> u32 {
    64
}
fn d_address_new() -> u32 {
    20
}
fn d_http_connections() -> u32 {
    1024
}

impl Limits {
    /// Every limit must let at least one in.
    pub(crate) fn check(&self, problems: &mut Vec<Problem>) {
        let fields = [
            ("sessions", self.sessions),
            ("new_sessions_per_second", self.new_sessions_per_second),
            ("lessons", self.lessons),
            ("school_sessions", self.school_sessions),
            ("school_new_per_second", self.school_new_per_second),
            ("teacher_sessions", self.teacher_sessions),
            ("teacher_new_per_second", self.teacher_new_per_second),
            ("address_sessions", self.address_sessions),
            ("address_new_per_second", self.address_new_per_second),
            ("http_connections", self.http_connections),
        ];
        for (name, v) in fields {
            if v == 0 {
                problems.push(Problem {
                    path: format!("limits.{name}"),
                    message: "0 would refuse everything; use at least 1".into(),
                });
            }
        }
        if self.teacher_sessions < 2 {
            problems.push(Problem {
                path: "limits.teacher_sessions".into(),
                message: format!(
                    "{} leaves no room for a reconnect (the new session opens before the old one closes); use at least 2",
                    self.teacher_sessions
                ),
            });
        }
    }
}
