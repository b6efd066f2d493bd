//! What nook keeps between runs and while one runs: named sandboxes'
//! overlay layers and records under `$XDG_DATA_HOME/nook/` ([`layers`]),
//! and the records of running sandboxes under `$XDG_RUNTIME_DIR/nook/`
//! ([`running`]).

pub mod layers;
pub mod running;
