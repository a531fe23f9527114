//! The warm-start state file: what each school's link sustained, kept across
//! restarts so that tomorrow's lesson starts where today's settled.
//!
//! ```json
//! {"version": 1, "schools": {"school-7": {"estimate_bps": 1450000}}}
//! ```
//! Written atomically (temporary file, then rename). A missing file is an empty
//! table; an unreadable one is reported and ignored, never fatal: the relay then
//! starts every school at the conservative default.

use std::collections::BTreeMap;
use std::path::Path;

use relay_core::WarmTable;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    schools: BTreeMap<String, SchoolState>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SchoolState {
    estimate_bps: u64,
}

const VERSION: u32 = 1;

/// Read the table; `Ok(None)` when the file does not exist yet.
pub fn load(path: &Path) -> Result<Option<WarmTable>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let f: StateFile = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a classroom-relay state file: {e}",
            path.display()
        )
    })?;
    if f.version != VERSION {
        return Err(format!(
            "{}: state file version {} is not {VERSION}",
            path.display(),
            f.version
        ));
    }
    Ok(Some(WarmTable::from_entries(
        f.schools.into_iter().map(|(k, v)| (k, v.estimate_bps)),
    )))
}

/// Write the table atomically.
pub fn save(path: &Path, table: &WarmTable) -> Result<(), String> {
    let f = StateFile {
        version: VERSION,
        schools: table
            .entries()
            .map(|(k, v)| (k.to_string(), SchoolState { estimate_bps: v }))
            .collect(),
    };
    let text = serde_json::to_string_pretty(&f).expect("state serializes");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_bad_files() {
        let dir = std::env::temp_dir().join(format!("cr-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let _ = std::fs::remove_file(&path);
        assert_eq!(load(&path), Ok(None));
        let mut t = WarmTable::default();
        t.observe("school-7", 1_450_000);
        save(&path, &t).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.start_for("school-7"), t.start_for("school-7"));
        std::fs::write(&path, "{\"version\": 2, \"schools\": {}}").unwrap();
        assert!(load(&path).unwrap_err().contains("version 2"));
        std::fs::write(&path, "not json").unwrap();
        assert!(load(&path)
            .unwrap_err()
            .contains("not a classroom-relay state file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
