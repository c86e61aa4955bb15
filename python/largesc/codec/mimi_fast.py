#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Faster streaming steps for MimiStreamingEncoder / MimiStreamingDecoder
(modes "exact", "fast" and "fast-int8"; the reference is mode "eager", the
upstream moshi modules). The per-frame step is re-implemented functionally on
weights copied from the moshi model once (the shared model is never
modified), activations time-major ([T, C]), every convolution ONE matrix
product on pre-packed weights. How each layer is rewritten, what each mode
guarantees, its environment knobs and the measured speed: docs/mimi.md,
"Speed modes" and "Measured speed"."""

import math
import os
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn

CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "gr-largesc", "inductor")


def _t(p):
    """A frozen copy of a weight, as a Parameter (so inductor freezing can
    treat it as a constant)."""
    return nn.Parameter(p.detach().clone().contiguous(), requires_grad=False)


_MKLDNN = None


def _mkldnn_ok():
    global _MKLDNN
    if _MKLDNN is None:
        try:
            w = torch.randn(8, 4)
            pw = torch.ops.mkldnn._reorder_linear_weight(w, 1)
            y = torch.ops.mkldnn._linear_pointwise(torch.randn(2, 4), pw, None, "none", [], "")
            _MKLDNN = y.shape == (2, 8) and os.environ.get("LARGESC_MIMI_NO_MKLDNN", "") == ""
        except Exception:
            _MKLDNN = False
    return _MKLDNN


_MK_LIN = None


def _mk_lin():
    """mkldnn::_linear_pointwise as a TorchScript function: the tracer cannot record
    its empty Scalar?[] argument from Python, a scripted call it can (traced step)."""
    global _MK_LIN
    if _MK_LIN is None:
        from typing import List, Optional, Union

        def mk_lin(x: torch.Tensor, pw: torch.Tensor, b: Optional[torch.Tensor]) -> torch.Tensor:
            s: List[Optional[Union[int, float, complex]]] = []
            return torch.ops.mkldnn._linear_pointwise(x, pw, b, "none", s, "")
        _MK_LIN = torch.jit.script(mk_lin)
    return _MK_LIN


class _Lin(nn.Module):
    """y = x @ w.T + b on a weight pre-packed for oneDNN (when available and
    not compiling: inductor's freezing packs the plain weight itself). The
    packed weight is a buffer, so that a traced step reads it as the module's."""

    enable = True          # set False while building a step that will be compiled

    def __init__(self, w, b=None, rows=2):
        super().__init__()
        self.w = _t(w)
        self.b = b
        cpu = self.w.device.type == "cpu"            # oneDNN packing is for the CPU only
        pw = (torch.ops.mkldnn._reorder_linear_weight(self.w, rows)
              if self.enable and cpu and _mkldnn_ok() else None)
        self.register_buffer("pw", pw)
        self.packed = pw is not None
        if self.packed:
            self.w = None          # keep only the packed copy

    def forward(self, x):
        if self.packed:
            if torch.jit.is_tracing():
                return _mk_lin()(x, self.pw, self.b)
            return torch.ops.mkldnn._linear_pointwise(x, self.pw, self.b, "none", [], "")
        return F.linear(x, self.w, self.b)


class _Conv(nn.Module):
    """Causal streaming Conv1d (moshi StreamingConv1d), time-major."""

    def __init__(self, sc):
        super().__init__()
        conv = sc.conv.conv
        if conv.groups != 1 or conv.padding[0] != 0:
            raise NotImplementedError("grouped or padded conv")
        w = conv.weight.detach()                     # [O, C, K]
        O, C, K = w.shape
        self.C, self.K = C, K
        self.S, self.d = conv.stride[0], conv.dilation[0]
        self.keff = (K - 1) * self.d + 1
        self.tp = self.keff - self.S
        self.replicate = sc.pad_mode == "replicate"
        self.lin = _Lin(w.permute(0, 2, 1).reshape(O, K * C).contiguous(),       # [O, K*C]
                        None if conv.bias is None else _t(conv.bias))

    def state(self):
        return {"prev": torch.zeros(max(self.tp, 0), self.C),
                "first": torch.ones((), dtype=torch.bool)}

    def forward(self, x, st):
        if self.tp > 0:
            prev = st["prev"]
            if self.replicate:
                prev.copy_(torch.where(st["first"], x[:1].expand_as(prev), prev))
                st["first"].zero_()
            xp = torch.cat([prev, x], 0)
            prev.copy_(xp[-self.tp:])
        else:
            xp = x
        if self.K == 1 and self.S == 1:
            cols = xp
        else:
            cols = xp.unfold(0, self.keff, self.S)           # [T_out, C, keff]
            if self.d > 1:
                cols = cols[:, :, ::self.d]
            cols = cols.transpose(1, 2).reshape(cols.shape[0], self.K * self.C)
        return self.lin(cols)


class _ConvTr(nn.Module):
    """Causal streaming ConvTranspose1d (moshi StreamingConvTranspose1d):
    matmul + overlap-add, time-major."""

    def __init__(self, sct):
        super().__init__()
        ct = sct.convtr.convtr
        w = ct.weight.detach()                       # [Cin, O/groups, K]
        Cin, Og, K = w.shape
        S = ct.stride[0]
        if K % S or ct.padding[0] or ct.output_padding[0] or ct.dilation[0] != 1:
            raise NotImplementedError("conv-transpose layout")
        self.K, self.S, self.m = K, S, K // S
        if ct.groups == 1:
            self.O = Og
            self.wl = _Lin(w.permute(2, 1, 0).reshape(K * Og, Cin).contiguous())   # [K*O, Cin]
            self.dw = None
        elif ct.groups == Cin and Og == 1:
            self.O = Cin
            self.wl = None
            self.dw = _t(w[:, 0, :].T)                               # [K, C]
        else:
            raise NotImplementedError("grouped conv-transpose")
        self.b = None if ct.bias is None else _t(ct.bias)

    def state(self):
        return {"partial": torch.zeros(self.m - 1, self.S, self.O)}

    def forward(self, x, st):
        T = x.shape[0]
        if self.dw is not None:
            c = x[:, None, :] * self.dw                # [T, K, C]
        else:
            c = self.wl(x)                             # [T, K*O]
        c = c.view(T, self.m, self.S, self.O)
        part = st["partial"]
        if self.m == 2:
            y = c[:, 0] + torch.cat([part, c[:-1, 1]], 0)
            part.copy_(c[-1:, 1])
        else:
            full = torch.zeros(T + self.m - 1, self.S, self.O, dtype=x.dtype, device=x.device)
            for j in range(self.m):
                full[j:j + T] += c[:, j]
            full[:self.m - 1] += part
            y = full[:T]
            part.copy_(full[T:])
        y = y.reshape(T * self.S, self.O)
        if self.b is not None:
            y = y + self.b
        return y


class _Elu(nn.Module):
    def forward(self, x, st):
        return F.elu(x)

    def state(self):
        return {}


class _ResBlock(nn.Module):
    def __init__(self, blk):
        super().__init__()
        if not isinstance(blk.shortcut, nn.Identity):
            raise NotImplementedError("resblock with conv shortcut")
        self.ops = nn.ModuleList(_build(blk.block))

    def state(self):
        return [op.state() for op in self.ops]

    def forward(self, x, st):
        v = x
        for op, s in zip(self.ops, st):
            v = op(v, s)
        return x + v


def _build(seq):
    from moshi.modules.conv import StreamingConv1d, StreamingConvTranspose1d
    from moshi.modules.seanet import SEANetResnetBlock
    ops = []
    for mod in seq:
        if isinstance(mod, StreamingConv1d):
            ops.append(_Conv(mod))
        elif isinstance(mod, StreamingConvTranspose1d):
            ops.append(_ConvTr(mod))
        elif isinstance(mod, SEANetResnetBlock):
            ops.append(_ResBlock(mod))
        elif isinstance(mod, nn.ELU):
            if mod.alpha != 1.0:
                raise NotImplementedError("ELU alpha")
            ops.append(_Elu())
        elif isinstance(mod, nn.Identity):
            continue
        else:
            raise NotImplementedError(f"Mimi fast path: unsupported module {type(mod).__name__}")
    return ops


class _Layer(nn.Module):
    pass


class _Int8Linear(nn.Module):
    """Dynamic int8 linear (fbgemm, per-channel weights). A module, so that a traced
    step reads its packed weight as the module's."""

    def __init__(self, w):
        super().__init__()
        w = w.detach().float()
        scales = w.abs().amax(dim=1).clamp_min(1e-12) / 127.0
        with warnings.catch_warnings():          # torch >= 2.10 flags quantized tensors as deprecated
            warnings.simplefilter("ignore", UserWarning)
            qw = torch.quantize_per_channel(w, scales.double(), torch.zeros(w.shape[0], dtype=torch.long),
                                            0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(qw, None)

    def forward(self, x):
        return torch.ops.quantized.linear_dynamic(x, self.packed, True)


class _Transformer(nn.Module):
    """moshi ProjectedTransformer (rope, causal, ring KV cache), streaming,
    time-major [T, C]."""

    def __init__(self, pt, int8=False):
        super().__init__()
        tr = pt.transformer
        if tr.positional_embedding != "rope" or tr.rope is None or not tr.rope.interleave:
            raise NotImplementedError("transformer positional embedding")
        self.in_proj = None if pt.input_proj is None else _t(pt.input_proj.weight)
        if len(pt.output_projs) != 1:
            raise NotImplementedError("several transformer outputs")
        p = pt.output_projs[0]
        self.out_proj = None if isinstance(p, nn.Identity) else _t(p.weight)
        self.layers = nn.ModuleList()
        for layer in tr.layers:
            at = layer.self_attn
            if (at.kv_repeat != 1 or len(at.in_projs) != 1 or at.cross_attention or not at.causal
                    or layer.gating is not None or layer.activation is not F.gelu
                    or not isinstance(layer.norm1, nn.LayerNorm) or at.context is None):
                raise NotImplementedError("transformer layer variant")
            L = _Layer()
            L.d = {"n1": (_t(layer.norm1.weight), _t(layer.norm1.bias), layer.norm1.eps),
                 "n2": (_t(layer.norm2.weight), _t(layer.norm2.bias), layer.norm2.eps),
                 "wqkv": _t(at.in_projs[0].weight), "wo": _t(at.out_projs[0].weight),
                 "w1": _t(layer.linear1.weight), "w2": _t(layer.linear2.weight),
                 "ls1": _t(layer.layer_scale_1.scale) if hasattr(layer.layer_scale_1, "scale") else None,
                 "ls2": _t(layer.layer_scale_2.scale) if hasattr(layer.layer_scale_2, "scale") else None}
            for k in ("wqkv", "wo", "w1", "w2"):
                setattr(L, k, _Int8Linear(L.d[k]) if int8 else _Lin(L.d[k]))
            for k in ("n1", "n2"):
                setattr(L, k + "w", L.d[k][0])
                setattr(L, k + "b", L.d[k][1])
            L.eps1, L.eps2 = L.d["n1"][2], L.d["n2"][2]
            L.ls1, L.ls2 = L.d["ls1"], L.d["ls2"]
            del L.d
            self.layers.append(L)
        at0 = tr.layers[0].self_attn
        self.E, self.H = at0.embed_dim, at0.num_heads
        self.D = self.E // self.H
        self.ctx = at0.context
        self.cap = at0.context
        self.int8 = int8
        D = self.D
        ds = torch.arange(D // 2, dtype=torch.float32)
        self.register_buffer("freqs", torch.exp(ds * (-math.log(tr.rope.max_period) * 2 / D)))   # as moshi apply_rope

    def state(self):
        return {"offset": torch.zeros((), dtype=torch.long),
                "slot_pos": torch.full((self.cap,), -1, dtype=torch.long),
                "cache": [torch.zeros(2, self.H, self.cap, self.D) for _ in self.layers]}

    def forward(self, x, st):
        T = x.shape[0]
        H, D, E = self.H, self.D, self.E
        if self.in_proj is not None:
            x = F.linear(x, self.in_proj)
        off = st["offset"]
        ar = torch.arange(T, device=x.device)
        pos = off + ar                                           # [T]
        idx = pos % self.cap
        slot = st["slot_pos"]
        slot.index_copy_(0, idx, pos)
        delta = pos[:, None] - slot[None, :]
        mask = ((slot >= 0) & (delta >= 0) & (delta < self.ctx))[None, None]    # [1, 1, T, cap]
        ts = off.float() + ar.float()
        ang = self.freqs * ts[:, None]                           # [T, D/2]
        cr, si = torch.cos(ang), torch.sin(ang)
        for L, cache in zip(self.layers, st["cache"]):
            h = F.layer_norm(x, (E,), L.n1w, L.n1b, L.eps1)
            p = L.wqkv(h).view(T, 3, H, D).permute(1, 2, 0, 3)     # [3, H, T, D]
            qk = p[:2].unflatten(-1, (D // 2, 2))
            r, i = qk[..., 0], qk[..., 1]
            qk = torch.stack([r * cr - i * si, r * si + i * cr], -1).flatten(-2)   # [2, H, T, D]
            cache[0].index_copy_(1, idx, qk[1])
            cache[1].index_copy_(1, idx, p[2])
            a = F.scaled_dot_product_attention(qk[0][None], cache[0][None], cache[1][None], mask)
            a = a[0].permute(1, 0, 2).reshape(T, E)
            u = L.wo(a)
            x = x + (L.ls1 * u if L.ls1 is not None else u)
            h = F.layer_norm(x, (E,), L.n2w, L.n2b, L.eps2)
            u = L.w2(F.gelu(L.w1(h)))
            x = x + (L.ls2 * u if L.ls2 is not None else u)
        off.add_(T)
        if self.out_proj is not None:
            x = F.linear(x, self.out_proj)
        return x


class _RVQ(nn.Module):
    """moshi SplitResidualVectorQuantizer.encode with the codebook side of
    torch.cdist's matrix-product form precomputed."""

    def __init__(self, q):
        super().__init__()
        self.groups = []
        for rvq in (q.rvq_first, q.rvq_rest):
            proj = rvq.input_proj
            wp = None if isinstance(proj, nn.Identity) else proj.weight[:, :, 0]
            bp = None if isinstance(proj, nn.Identity) or proj.bias is None else proj.bias
            books = []
            for layer in rvq.vq.layers[:rvq.n_q]:
                if not isinstance(layer.project_in, nn.Identity):
                    raise NotImplementedError("VQ projection")
                e = layer._codebook.embedding.detach()              # [N, d]
                aug = torch.cat([e, torch.ones_like(e[:, :1]), e.pow(2).sum(-1, keepdim=True)], -1)
                books.append((self._reg(e), self._reg(aug.T)))      # [d+2, N], contiguous
            self.groups.append((self._reg(wp), self._reg(bp), books))
        self.n_books = sum(len(b) for _, _, b in self.groups)

    def _reg(self, t):
        if t is None:
            return None
        name = f"t{len(self._parameters)}"
        self.register_parameter(name, _t(t))
        return name

    def forward(self, h, n_q=None):
        """h [T, C] -> codes [1, K, T] (K = n_q: only the first n_q codebooks
        are searched; None = all)."""
        out = []
        g = self._parameters
        left = self.n_books if n_q is None else n_q
        for wp, bp, books in self.groups:
            if left <= 0:
                break
            r = h if wp is None else F.linear(h, g[wp], None if bp is None else g[bp])   # [T, d]
            for en, an in books[:left]:
                e, aug = g[en], g[an]
                xn = r.pow(2).sum(-1, keepdim=True)
                xa = torch.cat([r.mul(-2), xn, torch.ones_like(xn)], -1)
                d = xa @ aug                 # [T, N]
                d.clamp_min_(0).sqrt_()
                i = d.argmin(dim=-1)
                r = r - F.embedding(i, e)
                out.append(i)
            left -= len(books)
        return torch.stack(out)[None]                                # [1, K, T]


def _inductor_setup():
    """On-disk inductor cache (kept across runs) and the dynamo settings the
    streaming step needs. Call before torch._inductor is first used."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", CACHE_DIR)
    try:
        os.makedirs(os.environ["TORCHINDUCTOR_CACHE_DIR"], exist_ok=True)
    except OSError:
        pass
    import torch._dynamo
    import torch._inductor.config as ic
    torch._dynamo.config.allow_unspec_int_on_nn_module = True
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    ic.freezing = os.environ.get("LARGESC_MIMI_FREEZING", "1") == "1"
    ic.fx_graph_cache = True


class _EncNet(nn.Module):
    def __init__(self, model, int8):
        super().__init__()
        self.ops = nn.ModuleList(_build(model.encoder.model))
        self.tr = _Transformer(model.encoder_transformer, int8=int8)
        if not model.downsample.learnt:
            raise NotImplementedError("non-learnt downsample")
        self.down = _Conv(model.downsample.conv)
        self.rvq = _RVQ(model.quantizer)

    def state(self):
        return {"ops": [op.state() for op in self.ops], "tr": self.tr.state(), "down": self.down.state()}

    def features(self, x, st):
        """Everything before the quantizer (what a traced step runs)."""
        h = x.reshape(-1, 1)
        for op, s in zip(self.ops, st["ops"]):
            h = op(h, s)
        h = self.tr(h, st["tr"])
        return self.down(h, st["down"])

    def forward(self, x, st, n_q=None):
        return self.rvq(self.features(x, st), n_q)


class _DecNet(nn.Module):
    def __init__(self, model, int8):
        super().__init__()
        if not model.upsample.learnt:
            raise NotImplementedError("non-learnt upsample")
        self.up = _ConvTr(model.upsample.convtr)
        self.tr = _Transformer(model.decoder_transformer, int8=int8)
        self.ops = nn.ModuleList(_build(model.decoder.model))

    def state(self):
        return {"up": self.up.state(), "tr": self.tr.state(), "ops": [op.state() for op in self.ops]}

    def forward(self, lat, st):
        h = lat[0].T
        h = self.up(h, st["up"])
        h = self.tr(h, st["tr"])
        for op, s in zip(self.ops, st["ops"]):
            h = op(h, s)
        return h.reshape(1, 1, -1)


def build_net(net_cls, model, int8=False, packed=True):
    """net_cls(model) in eval mode. packed=False keeps plain weights (no oneDNN
    packing), for a net that will be compiled or exported."""
    _Lin.enable = packed
    try:
        return net_cls(model, int8=int8).eval()
    finally:
        _Lin.enable = True


def _state_to(st, device):
    """A streaming state (nested dicts/lists of tensors) on `device`."""
    if isinstance(st, dict):
        return {k: _state_to(v, device) for k, v in st.items()}
    if isinstance(st, list):
        return [_state_to(v, device) for v in st]
    return st.to(device)


def _state_copy_(dst, src):
    """Copies state `src` into `dst` in place (the tensors a CUDA graph
    captured keep their addresses)."""
    if isinstance(dst, dict):
        for k in dst:
            _state_copy_(dst[k], src[k])
    elif isinstance(dst, list):
        for d, s_ in zip(dst, src):
            _state_copy_(d, s_)
    else:
        dst.copy_(src)


def cuda_graphs_wanted(device):
    """CUDA graphs for the step on a CUDA device, unless LARGESC_MIMI_CUDA_GRAPH=0
    (or moshi's NO_CUDA_GRAPH) says otherwise."""
    if torch.device(device).type != "cuda":
        return False
    if os.environ.get("LARGESC_MIMI_CUDA_GRAPH", "1").lower() in ("0", "no", "n", "false"):
        return False
    return os.environ.get("NO_CUDA_GRAPH", "").lower() in ("", "0", "no", "n")


class _Step:
    """Driver shared by FastEncoder / FastDecoder: streaming state on the
    model's device, optional torch.compile (one compiled graph per
    frames-per-call value) and, on CUDA, one CUDA graph per frames-per-call
    value (moshi's CUDAGraphed: one eager warm-up call, then capture; every
    later call copies its input into the captured one and replays). State
    tensors are reset in place, so a captured graph stays valid."""

    compile_mode = os.environ.get("LARGESC_MIMI_COMPILE_MODE", "max-autotune-no-cudagraphs")
    # exact / fast-int8 on the CPU run a traced step (torch.jit.trace, one per input
    # length): the same operators on the same weights, bit for bit, run by TorchScript
    # without the interpreter lock between them (docs/mimi.md); LARGESC_MIMI_TRACE=0: off
    trace_wanted = os.environ.get("LARGESC_MIMI_TRACE", "1") != "0"

    def __init__(self, net_cls, model, mode, cuda_graphs=None):
        if mode not in ("exact", "fast", "fast-int8"):
            raise ValueError(f"mimi_fast: unknown mode {mode!r}")
        self.device = next(model.parameters()).device
        if mode == "fast-int8" and self.device.type != "cpu":
            raise ValueError(f"Mimi mode 'fast-int8' runs on the CPU only (int8 fbgemm kernels); "
                             f"on {self.device} use mode 'exact' or 'fast'")
        self.mode = mode
        self.want_compile = mode == "fast"
        if self.want_compile:
            _inductor_setup()
        self.net = build_net(net_cls, model, int8=(mode == "fast-int8"), packed=not self.want_compile)
        self.net.to(self.device)       # buffers built on the CPU (rotary frequencies)
        # CUDA graphs: None = on a CUDA device (see cuda_graphs_wanted); True on
        # the CPU runs the same wrapper with graphing disabled (tests).
        self.cuda_graphs = cuda_graphs_wanted(self.device) if cuda_graphs is None else bool(cuda_graphs)
        self.compiled = False          # True once a compiled step has run
        self.compile_s = 0.0           # time spent in first calls (compile, cache load or trace)
        self._fns = {}
        self._graphs = {}
        self.st = None
        self.reset()
        self.traced = {}               # input length -> traced step (see trace_wanted)
        self.trace = (self.trace_wanted and self.device.type == "cpu" and not self.want_compile
                      and not self.cuda_graphs)
        self._leaves, self._spec = torch.utils._pytree.tree_flatten(self.st)

    def _run_net(self, x, st, *args):
        """The part of the net a traced step covers (the encoder's quantizer runs after it)."""
        return self.net.features(x, st) if isinstance(self.net, _EncNet) else self.net(x, st)

    def _traced_step(self, x):
        """The traced step for x's length, traced on a copy of the state (tracing runs the
        net once); None (and tracing off for good, with a warning) when tracing fails."""
        n = x.shape[-1]
        fn = self.traced.get(n)
        if fn is not None:
            return fn
        t = time.perf_counter()
        step, spec = self._run_net, self._spec

        class _Wrap(nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, a, *leaves):
                return step(a, torch.utils._pytree.tree_unflatten(list(leaves), spec))
        try:
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)   # shapes are fixed per trace
                leaves = [v.clone() for v in self._leaves]
                fn = torch.jit.trace(_Wrap(self.net), (x.clone(), *leaves), check_trace=False, strict=False)
        except Exception as e:         # noqa: BLE001 - stay eager, the state is intact
            warnings.warn(f"Mimi step: tracing failed ({type(e).__name__}: {e}); running it untraced")
            self.trace = False
            return None
        # TorchScript profiles and optimises a graph on its first two calls (75-100 ms each
        # here): made now, on a copy of the state, not on a live link's first frames
        with torch.inference_mode():
            leaves = [v.clone() for v in self._leaves]
            for _ in range(2):
                fn(x, *leaves)
        self.traced[n] = fn
        self.compile_s += time.perf_counter() - t
        return fn

    def reset(self):
        with torch.inference_mode():
            fresh = _state_to(self.net.state(), self.device)
            if self.st is None:
                self.st = fresh
            else:
                _state_copy_(self.st, fresh)

    def _graphed(self, n):
        """The CUDA-graphed step for n input samples (whole net, every codebook)."""
        g = self._graphs.get(n)
        if g is None:
            from moshi.utils.compile import CUDAGraphed
            net, st = self.net, self.st      # graphs are used uncompiled only (step)
            g = CUDAGraphed(lambda x: net(x, st), warmup_steps=1,
                            disable=self.device.type != "cuda")
            self._graphs[n] = g
        return g

    def _compiled_fn(self, n):
        fn = self._fns.get(n)
        if fn is None:
            kw = {} if not self.compile_mode or self.compile_mode == "default" else {"mode": self.compile_mode}
            fn = torch.compile(self.net, dynamic=False, fullgraph=True, **kw)
            self._fns[n] = fn
        return fn

    def step(self, x, *args):
        """One streaming call. Extra args go to the net uncompiled and
        ungraphed only (the encoder's n_q: a compiled or graphed step always
        searches every codebook, so that it is built once). A graphed step's
        output tensor is overwritten by the next call: copy it out."""
        x = x.to(self.device)
        if self.cuda_graphs and not self.want_compile:
            try:
                return self._graphed(x.shape[-1])(x)
            except Exception as e:    # capture failed: stay eager (the state is intact)
                if self.device.type != "cuda":
                    raise
                warnings.warn(f"Mimi step: CUDA graph capture failed ({type(e).__name__}: {e}); "
                              f"running the step without graphs")
                self.cuda_graphs = False
                self._graphs.clear()
        if self.trace:
            fn = self._traced_step(x)
            if fn is not None:
                h = fn(x, *self._leaves)
                return self.net.rvq(h, *args) if isinstance(self.net, _EncNet) else h
        if not self.want_compile:
            return self.net(x, self.st, *args)
        n = x.shape[-1]
        if n in self._fns:
            return self._fns[n](x, self.st)
        t = time.perf_counter()
        try:
            y = self._compiled_fn(n)(x, self.st)
            self.compiled = True
        except Exception as e:        # no C++ compiler, inductor failure...: stay exact, uncompiled
            warnings.warn(f"Mimi fast mode: torch.compile failed ({type(e).__name__}: {e}); "
                          f"using the uncompiled exact step")
            self.want_compile = False
            self._fns.clear()
            y = self.net(x, self.st, *args)   # compiling fails before the step runs: state intact
        self.compile_s += time.perf_counter() - t
        return y


class FastEncoder(_Step):
    """Streaming encoder step: pcm [1, 1, N] (N multiple of 1920) -> codes [1, K, T]."""

    def __init__(self, model, mode="exact", cuda_graphs=None):
        super().__init__(_EncNet, model, mode, cuda_graphs)
        if self.trace:          # one frame per call: traced now, not on a live link's first frame
            self._traced_step(torch.zeros(1, 1, 1920, device=self.device))


class FastDecoder(_Step):
    """Streaming decoder step: latent [1, 512, T] -> pcm [1, 1, T*1920]."""

    def __init__(self, model, mode="exact", cuda_graphs=None):
        super().__init__(_DecNet, model, mode, cuda_graphs)
        if self.trace:
            self._traced_step(torch.zeros(1, 512, 1, device=self.device))
