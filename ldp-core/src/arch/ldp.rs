//! The seed `ldp` block: its definition is the graph [`crate::graph::ldp`]; this module keeps
//! the typed API at its old path.

pub use crate::graph::ldp::{forward, LdpConfig, LdpWeights};
