//! Janus's HTTP API, as much of it as the load generator needs to run a lesson
//! through Janus's VideoRoom plugin (for the side-by-side benchmark): a session,
//! one room per lesson, the teacher as publisher (our offer, Janus's answer) and each
//! classroom as subscriber (Janus's offer, our answer). Events arrive by long poll.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::load::LoadError;

/// How long one signalling step may wait for Janus's event.
const EVENT_WITHIN: Duration = Duration::from_secs(10);

/// One Janus session (one per lesson).
pub struct Session {
    base: String,
    id: u64,
    agent: ureq::Agent,
    /// Events polled while waiting for another handle's.
    parked: Vec<Value>,
    tx: u64,
}

/// What a VideoRoom request brought back: the plugin's data and any SDP.
pub struct Reply {
    pub data: Value,
    pub sdp: Option<String>,
}

impl Session {
    /// A new session on the Janus at `base` (e.g. `http://198.18.77.2:18088/janus`).
    pub fn create(base: &str) -> Result<Session, LoadError> {
        let mut s = Session {
            base: base.trim_end_matches('/').to_string(),
            id: 0,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(35))
                .build(),
            parked: vec![],
            tx: 0,
        };
        let r = s.post(&s.base.clone(), json!({"janus": "create"}))?;
        s.id = id_of(&r, "data")?;
        Ok(s)
    }

    fn post(&mut self, url: &str, mut body: Value) -> Result<Value, LoadError> {
        self.tx += 1;
        body["transaction"] = json!(format!("t{}", self.tx));
        let r = self
            .agent
            .post(url)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string());
        let r = self.json(r)?;
        if r["janus"] == "error" {
            return Err(LoadError::Failed(format!("Janus: {}", r["error"])));
        }
        Ok(r)
    }

    fn json(&self, r: Result<ureq::Response, ureq::Error>) -> Result<Value, LoadError> {
        let text = r
            .map_err(|e| LoadError::NotAnswering(self.base.clone(), e.to_string()))?
            .into_string()
            .map_err(|e| LoadError::NotAnswering(self.base.clone(), e.to_string()))?;
        serde_json::from_str(&text)
            .map_err(|e| LoadError::Failed(format!("Janus answered no JSON ({e}): {text}")))
    }

    /// Attach a VideoRoom handle.
    pub fn attach(&mut self) -> Result<u64, LoadError> {
        let url = format!("{}/{}", self.base, self.id);
        let r = self.post(
            &url,
            json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}),
        )?;
        id_of(&r, "data")
    }

    /// Send a VideoRoom request (with an SDP, if given) and wait for its answer:
    /// the synchronous one, or the event that follows an "ack".
    pub fn request(
        &mut self,
        handle: u64,
        body: Value,
        jsep: Option<(&str, &str)>,
    ) -> Result<Reply, LoadError> {
        let url = format!("{}/{}/{}", self.base, self.id, handle);
        let mut msg = json!({"janus": "message", "body": body});
        if let Some((kind, sdp)) = jsep {
            msg["jsep"] = json!({"type": kind, "sdp": sdp, "trickle": false});
        }
        let r = self.post(&url, msg)?;
        let ev = match r["janus"].as_str() {
            Some("success") => r,
            Some("ack") => self.event_for(handle)?,
            _ => return Err(LoadError::Failed(format!("Janus answered {r}"))),
        };
        let data = ev["plugindata"]["data"].clone();
        if let Some(e) = data.get("error") {
            return Err(LoadError::Failed(format!("Janus VideoRoom: {e}")));
        }
        Ok(Reply {
            data,
            sdp: ev["jsep"]["sdp"].as_str().map(str::to_string),
        })
    }

    /// The next plugin event of `handle`, polling the session's event queue.
    fn event_for(&mut self, handle: u64) -> Result<Value, LoadError> {
        let deadline = Instant::now() + EVENT_WITHIN;
        loop {
            let mine = |e: &Value| e["sender"].as_u64() == Some(handle) && e["janus"] == "event";
            if let Some(i) = self.parked.iter().position(mine) {
                return Ok(self.parked.remove(i));
            }
            if Instant::now() > deadline {
                return Err(LoadError::Failed(format!(
                    "Janus sent no event for handle {handle} within {} s",
                    EVENT_WITHIN.as_secs()
                )));
            }
            self.tx += 1;
            let url = format!("{}/{}?maxev=10&rid={}", self.base, self.id, self.tx);
            let r = self.agent.get(&url).call();
            let r = self.json(r)?;
            match r {
                Value::Array(v) => self.parked.extend(v),
                v if v["janus"] == "keepalive" => {}
                v => self.parked.push(v),
            }
        }
    }

    /// End the session (and with it its handles and the peers they carry).
    pub fn destroy(mut self) {
        let url = format!("{}/{}", self.base, self.id);
        let _ = self.post(&url, json!({"janus": "destroy"}));
    }
}

fn id_of(r: &Value, field: &str) -> Result<u64, LoadError> {
    r[field]["id"]
        .as_u64()
        .ok_or_else(|| LoadError::Failed(format!("Janus answered without an id: {r}")))
}

/// Whether Janus answers at `base` (its `/info`).
pub fn alive(base: &str) -> Result<(), LoadError> {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build()
        .get(&format!("{}/info", base.trim_end_matches('/')))
        .call()
        .map(|_| ())
        .map_err(|e| LoadError::NotAnswering(base.into(), e.to_string()))
}
