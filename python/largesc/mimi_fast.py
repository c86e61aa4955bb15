#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Faster streaming steps for MimiStreamingEncoder / MimiStreamingDecoder
(modes "fast" and "fast-int8"). The exact reference is mode "eager".

fast       torch.compile (inductor, dynamic shapes) of the per-frame streaming
           step, with torch._dynamo.config.allow_unspec_int_on_nn_module so the
           streaming state's Python int offsets do not force a recompile per
           step. First call compiles (minutes on 2 cores without a cache;
           TORCHINDUCTOR_CACHE_DIR / the default inductor cache makes later
           starts fast). fp32: tokens identical to eager in our runs.
fast-int8  int8 dynamic quantisation (torch.ao quantize_dynamic, per-tensor
           int8 weights, fp32 activations) of the transformer feed-forward and
           attention output linears, on a private copy of the model; not
           compiled. Approximate: agreement with eager is measured by
           benchmarks/mimi_streaming.py (random weights understate the error:
           their layer scale 0.01 shrinks the transformer's contribution).

Both keep their own copy of the model's streaming sub-modules, so the shared
eager model is left untouched."""

import copy
from contextlib import ExitStack

import torch


def _quantize_transformer(tr):
    """int8 dynamic quantisation of linear1/linear2/out_projs in every layer
    of a moshi ProjectedTransformer (in_projs stay fp32: moshi's streaming
    attention state needs them to be nn.Linear)."""
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic
    names = {}
    for name, mod in tr.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(mod, torch.nn.Linear) and (leaf in ("linear1", "linear2") or ".out_projs." in name):
            names[name] = default_dynamic_qconfig
    return quantize_dynamic(tr, names, inplace=False)


def _compile(fn):
    import torch._dynamo
    torch._dynamo.config.allow_unspec_int_on_nn_module = True
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    return torch.compile(fn, dynamic=True, fullgraph=False)


class _FastBase:
    def __init__(self, model, parts, int8):
        self.parts = {k: copy.deepcopy(getattr(model, k)) if not isinstance(k, tuple) else None
                      for k in parts}
        for k in list(self.parts):
            if int8 and k.endswith("transformer"):
                self.parts[k] = _quantize_transformer(self.parts[k])
        self.int8 = int8
        self._stack = None
        self._fn = self._step if int8 else _compile(self._step)

    def _streaming_modules(self):
        raise NotImplementedError

    def reset(self):
        if self._stack is not None:
            self._stack.close()
        self._stack = ExitStack()
        for m in self._streaming_modules():
            self._stack.enter_context(m.streaming(1))

    def step(self, x):
        return self._fn(x)


class FastEncoder(_FastBase):
    def __init__(self, model, int8=False):
        self.quantizer = model.quantizer
        super().__init__(model, ("encoder", "encoder_transformer", "downsample"), int8)
        self.reset()

    def _streaming_modules(self):
        p = self.parts
        return [p["encoder"], p["encoder_transformer"], p["downsample"].conv]

    def _step(self, x):
        p = self.parts
        emb = p["encoder"](x)
        (emb,) = p["encoder_transformer"](emb)
        emb = p["downsample"](emb)
        return self.quantizer.encode(emb)


class FastDecoder(_FastBase):
    def __init__(self, model, int8=False):
        super().__init__(model, ("upsample", "decoder_transformer", "decoder"), int8)
        self.reset()

    def _streaming_modules(self):
        p = self.parts
        return [p["upsample"].convtr, p["decoder_transformer"], p["decoder"]]

    def _step(self, lat):
        p = self.parts
        emb = p["upsample"](lat)
        (emb,) = p["decoder_transformer"](emb)
        return p["decoder"](emb)
