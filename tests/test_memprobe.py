"""validation.memprobe: the peak of the allocation records, the rows it writes, their pricing."""

from __future__ import annotations

import pytest

from analysis.accuracy.memory_check import predict
from analysis.accuracy.memory_measured import measured_workload
from hwprofiles.inputs import parse_toml
from validation.mapping import model_spec, stack_options, workload
from validation.memprobe import SETUPS, _peak, llmcap_case, to_toml


class _Ev:
    def __init__(self, name, start, end=None, nbytes=0, device="DeviceType.CPU"):
        self._n, self._s, self._e, self._b, self._d = name, start, end or start, nbytes, device

    def name(self):
        return self._n

    def start_ns(self):
        return self._s

    def end_ns(self):
        return self._e

    def nbytes(self):
        return self._b

    def device_type(self):
        return self._d


def test_peak_is_the_largest_running_sum_inside_the_step():
    raw = [
        _Ev("[memory]", 1, nbytes=100),  # weights, before the step
        _Ev("step", 10, 50),
        _Ev("aten::mm", 19, 22),
        _Ev("[memory]", 20, nbytes=30),
        _Ev("[memory]", 21, nbytes=5),  # peak 135 inside aten::mm
        _Ev("[memory]", 30, nbytes=-35),
        _Ev("[memory]", 60, nbytes=500),  # after the step: not counted
    ]
    got = _peak(raw, "step")
    assert got == {"peak_bytes": 135, "base_bytes": 100, "peak_op": "aten::mm"}


def test_rows_round_trip_through_toml_and_price_the_same_setup():
    setup = SETUPS["small-fp32-ddp"]
    case = {**setup, "quantity": "peak", **llmcap_case(setup)}
    row = {"id": "here-x", "group": "measured here", "source": "measured: test", "what": "w",
           "kind": "measured", "value": 150.0, "unit": "MB", "case": case}  # fmt: skip
    back = parse_toml(to_toml([row]), "rows", "test")["rows"][0]
    w, opts = measured_workload(back["case"])
    assert w.model == model_spec_of(setup)
    assert opts.grad_bucket_copies and opts.amp_casts
    assert w.parallel == workload(_cfg(setup), 1, "ddp", "fp32").parallel
    # the analysis side prices it as the validation mapping would
    from analysis.predict import analytic_arrays
    from hwprofiles.catalogue import load_profile

    direct = analytic_arrays(workload(_cfg(setup), 1, "ddp", "fp32"), load_profile("a100-80gb"),
                             stack_options())["memory_per_gpu_bytes"]  # fmt: skip
    assert predict(back) == pytest.approx(float(direct))


def _cfg(setup):
    from validation.gptconfig import PRESETS

    return PRESETS[setup["model"]]


def model_spec_of(setup):
    return model_spec(_cfg(setup))


def test_between_steps_rows_price_weights_optimizer_and_ddp_buckets():
    setup = SETUPS["small-fp32-ddp"]
    case = {**setup, "quantity": "between steps", **llmcap_case(setup)}
    row = {"group": "measured here", "case": case}
    p = model_spec_of(setup).num_params()
    # fp32 weights 4 + Adam moments 8 + DDP's bucket copy of the gradients 4
    assert predict(row) == pytest.approx(16.0 * p)
