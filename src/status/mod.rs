//! Service quality (docs/contract.md §11, docs/status.md): availability
//! measured by the gateway itself per component (`sandbox`, `production`)
//! and minute, the public status page and its Statuspage-shaped JSON,
//! incidents and scheduled maintenances.
//!
//! - `day` — the availability arithmetic of one local day (pure).

pub mod day;
