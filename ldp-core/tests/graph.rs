//! The graph module: what a node list derives (tensor lists, `quant.meta` layout, sizes) and the
//! configuration checks at the executors' boundary.

use ldp_core::blob::specs::{Dim, ElemOf};
use ldp_core::blob::ElemType;
use ldp_core::graph::{float_index, graph_of, meta, mlp2x_gelu, GraphConfig};
use ldp_core::{Arch, Error};

fn keys(specs: &[ldp_core::blob::specs::TensorSpec]) -> Vec<String> {
    specs.iter().map(|s| s.to_string()).collect()
}

#[test]
fn mlp2x_gelu_tensor_lists_follow_its_nodes() {
    let g = graph_of(Arch::Mlp2xGelu).expect("a graph architecture");
    assert_eq!(g.nodes, mlp2x_gelu::NODES);
    assert_eq!(keys(g.float), ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(g.float[0].dims, &[Dim::Cout, Dim::Cin]);
    assert_eq!(g.float[2].dims, &[Dim::Cout, Dim::Cout]);
    assert_eq!(g.float[0].elem, ElemOf::Weight);
    assert_eq!(g.float[1].elem, ElemOf::Fixed(ElemType::F32));
    assert_eq!(
        keys(g.int8),
        [
            "input.scale",
            "input.zero",
            "0.weight",
            "0.bias",
            "0.mult",
            "0.lut",
            "2.weight",
            "2.bias",
            "2.mult",
            "quant.scales",
            "quant.meta"
        ]
    );
    let x16 = keys(g.int8_x16);
    assert_eq!(x16[1], "input.limit");
    assert_eq!(x16[2..], keys(g.int8)[2..]);
    assert_eq!(g.int8[5].dims, &[Dim::Lit(256)]);
    let len = meta::len(2) as u32;
    assert_eq!(len, 7);
    assert_eq!(g.int8[10].dims, &[Dim::Lit(len)]);
    assert_eq!(g.conv_shifts, &[meta::shift(0), meta::shift(1)]);
    assert_eq!(
        [meta::shift(1), meta::pre(1), meta::out(1)],
        [4, 5, 6],
        "three quant.meta entries per node after the input's zero point"
    );
    assert_eq!(float_index(g.nodes, 0), 0);
    assert_eq!(float_index(g.nodes, 1), 2);
    assert!(graph_of(Arch::Ldp).is_none());
}

#[test]
fn tensor_spec_keys_match_by_prefix_and_suffix() {
    let g = &mlp2x_gelu::GRAPH;
    let w = g.int8[2];
    assert!(w.is("0", ".weight"));
    assert!(w.is("0.", "weight"));
    assert!(w.is("0.weight", ""));
    assert!(!w.is("0", ".weigh"));
    assert!(!w.is("2", ".weight"));
    assert!(!w.is("0", ".weightx"));
    assert!(w.ends_with(".weight") && w.ends_with("t") && w.ends_with(""));
    assert!(!w.ends_with(".bias") && !w.ends_with("x0.weight"));
    assert!(g.int8[0].is("input.scale", "") && g.int8[0].ends_with(".scale"));
}

fn cfg(arch: Arch, c_in: usize, c_out: usize, h: usize, w: usize) -> GraphConfig {
    GraphConfig {
        arch,
        c_in,
        c_out,
        h,
        w,
    }
}

#[test]
fn sizes_of_the_llava_projector() {
    // LLaVA-1.5 7B: CLIP ViT-L/14 at 336 px (1024 channels, 24x24 tokens) into a 4096-wide LLM.
    let c = cfg(Arch::Mlp2xGelu, 1024, 4096, 24, 24);
    c.validate().unwrap();
    assert_eq!(c.param_count(), 1024 * 4096 + 4096 + 4096 * 4096 + 4096);
    assert_eq!(c.macs(), 576 * (1024 * 4096 + 4096 * 4096));
    assert_eq!(c.input_len(), 576 * 1024);
    assert_eq!(c.output_len(), 576 * 4096);
    // One intermediate map (the GELU output) in the float pass and in int8.
    assert_eq!(c.scratch_len(), 576 * 4096);
    assert_eq!(c.scratch_bytes_i8(), 576 * 4096);
    // Streaming (the graph's row executor): one chunk of `CHUNK` tokens of the input, of the
    // intermediate and of the output — the input is read chunk by chunk, nothing is kept.
    let k = ldp_core::stream::CHUNK;
    assert_eq!(
        c.stream_scratch_bytes(ldp_core::stream::FULL_WIDTH, (1, 1, 1)),
        k * 1024 + k * 4096 + k * 4096
    );
}

#[test]
fn invalid_configurations_are_errors_not_silence() {
    for (c, what) in [
        (cfg(Arch::Ldp, 4, 4, 2, 2), "not a graph architecture"),
        (cfg(Arch::Mlp2xGelu, 0, 4, 2, 2), "c_in 0"),
        (cfg(Arch::Mlp2xGelu, 4, 4, 0, 2), "h 0"),
        (cfg(Arch::Mlp2xGelu, 4, 1 << 15, 1, 1), "c_out^2 over 2^28"),
        (cfg(Arch::Mlp2xGelu, 4, 4, usize::MAX, 2), "h*w overflows"),
        (
            cfg(Arch::Mlp2xGelu, 4, 4, 1 << 14, 1 << 14),
            "map over 2^28",
        ),
    ] {
        assert!(
            matches!(c.validate(), Err(Error::InvalidConfig(_))),
            "{what}"
        );
        // The executors (and the size functions) check the sizes before computing any.
        if c.arch == Arch::Mlp2xGelu {
            assert_eq!(c.scratch_len(), 0, "{what}");
            let mut y = [0f32; 4];
            let mut s = [0f32; 4];
            let none = |_| -> Result<&[f32], Error> { Ok(&[]) };
            let r = ldp_core::graph::float::forward_tensors::<f32, f32>(
                &ldp_core::graph::mlp2x_gelu::GRAPH,
                c.dims(),
                none,
                none,
                &[0.0; 4],
                &mut y,
                &mut s,
            );
            assert!(matches!(r, Err(Error::InvalidConfig(_))), "{what}: {r:?}");
        }
    }
}

#[test]
fn weights_of_the_wrong_length_are_refused() {
    let c = cfg(Arch::Mlp2xGelu, 3, 4, 1, 2);
    let (w0, b0, w2, b2) = (
        vec![0.1f32; 12],
        vec![0f32; 4],
        vec![0.1f32; 15],
        vec![0f32; 4],
    );
    let t = [&w0, &b0, &w2, &b2];
    let tensor = |k: usize| -> Result<&[f32], Error> { Ok(t[k].as_slice()) };
    let mut y = vec![0f32; c.output_len()];
    let mut s = vec![0f32; c.scratch_len()];
    let r = ldp_core::graph::float::forward_tensors(
        &ldp_core::graph::mlp2x_gelu::GRAPH,
        c.dims(),
        tensor,
        tensor,
        &[1.0; 6],
        &mut y,
        &mut s,
    );
    assert!(r.is_err(), "a 15-element 4x4 weight must be refused: {r:?}");
}
