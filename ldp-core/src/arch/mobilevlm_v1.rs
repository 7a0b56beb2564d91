//! MobileVLM V1's projector (`LDPNetProjector`, docs/ARCHITECTURES.md §2): the typed API of the
//! graph [`crate::graph::mobilevlm_v1`], where the architecture is defined.

pub use crate::graph::mobilevlm_v1::{
    forward, make_divisible, V1BlockWeights, V1Config, V1Weights,
};
