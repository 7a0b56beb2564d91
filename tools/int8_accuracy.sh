#!/usr/bin/env bash
# Measures int8 (and f16) accuracy of ldp-quant on every golden case against PyTorch float64,
# on the held-out inputs (not the calibration inputs). Needs python3 with numpy.
# Usage: tools/int8_accuracy.sh [extra convert flags...]   e.g. --calib-method minmax
set -euo pipefail
cd "$(dirname "$0")/.."
Q=${LDP_QUANT:-target/release/ldp-quant}
G=host-tests/golden
T=$(mktemp -d)
for c in $(python3 -c "import json;print(' '.join(json.load(open('$G/index.json'))))"); do
  grid=$(python3 -c "import json;d=json.load(open('$G/$c/meta.json'));print(str(d['h'])+'x'+str(d['w']))")
  $Q convert --weights $G/$c/weights.safetensors --grid $grid --dtype int8 --calib $G/$c/calib.npy "$@" -o $T/m.ldp >/dev/null
  $Q run --model $T/m.ldp --input $G/$c/heldout.npy -o $T/y.npy >/dev/null
  python3 - "$c" "$T/y.npy" "$G/$c/heldout_expected.npy" "$T/m.ldp" <<'PY'
import sys, numpy as np, os
c, y, e, m = sys.argv[1:]
y = np.load(y).astype(np.float64); e = np.load(e)
errs = [np.linalg.norm(y[i]-e[i])/np.linalg.norm(e[i]) for i in range(len(e))]
print(f"{c:24s} int8 rel_l2 mean {np.mean(errs):.4f} max {np.max(errs):.4f}  blob {os.path.getsize(m)} B")
PY
done
rm -rf "$T"
