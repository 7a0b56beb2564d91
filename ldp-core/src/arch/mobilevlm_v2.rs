//! MobileVLM V2's projector: its definition is the graph [`crate::graph::mobilevlm_v2`]; this
//! module keeps the typed API at its old path.

pub use crate::graph::mobilevlm_v2::{forward, V2Config, V2Weights, POOL};
