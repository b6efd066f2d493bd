//! What nook keeps between runs and while one runs: named sandboxes'
//! overlay layers and records under `$XDG_DATA_HOME/nook/` ([`layers`]),
//! the records of running sandboxes under `$XDG_RUNTIME_DIR/nook/`
//! ([`running`]), and traced runs' refusals under `$XDG_STATE_HOME/nook/`
//! ([`trace`]).

pub mod layers;
pub mod running;
pub mod trace;
