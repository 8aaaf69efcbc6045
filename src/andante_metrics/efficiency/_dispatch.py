"""The recording engine: a ``TorchDispatchMode`` intercepting each ATen operator of a forward pass.

The mode attributes each operator call to the stack of modules active at that moment. Module
entry and exit are tracked with global forward hooks (``register_module_forward_pre_hook`` and
``register_module_forward_hook``) that exist only while the recorder is active, so the model
itself never carries a hook, buffer or attribute of ours.

A module's path is the chain of attribute names from the root model through the modules active
at the call, so a module shared by two parents gets one path per parent, and each call adds its
cost again.

NOTE: ``TorchDispatchMode`` (``torch.utils._python_dispatch``), ``func.decompose`` and
``torch._C._dispatch_has_kernel_for_dispatch_key`` are private PyTorch interfaces; this module is
tested with PyTorch 2.14.1 only.
"""

from __future__ import annotations

import contextlib
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from andante_metrics.efficiency._formulas import MAC_FORMULAS, NEEDS_OUTPUT

OpHook = Callable[[Any, tuple, dict, Any, int], None]


@dataclass
class ModuleRecord:
    """Cost of one module path, inclusive of every module and operator called inside it."""

    path: str
    type_name: str
    depth: int
    parameters: int
    calls: int = 0
    macs: int = 0


@dataclass
class Recording:
    """Everything one recorder saw: per-module, per-operator and unattributed counts."""

    modules: dict[str, ModuleRecord] = field(default_factory=dict)
    op_macs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    op_calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    other_calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total_macs: int = 0
    peak_bytes: int = 0


def _is_aliasing(func: Any) -> bool:
    """Whether ``func`` returns a view of, or writes into, one of its inputs (no new memory)."""
    if func.is_view:
        return True
    return any(ret.alias_info is not None for ret in func._schema.returns)


def _plan(func: Any) -> tuple[Any, bool, bool]:
    """Return (MAC formula or None, whether to decompose it, whether it aliases an input)."""
    formula = MAC_FORMULAS.get(func)
    decomposable = formula is None and torch._C._dispatch_has_kernel_for_dispatch_key(
        func.name(), "CompositeImplicitAutograd"
    )
    return formula, decomposable, _is_aliasing(func)


# Operator to its plan, filled on first sight of each operator.
_PLANS: dict[Any, tuple[Any, bool, bool]] = {}


@contextlib.contextmanager
def buffers_restored(model: nn.Module) -> Iterator[None]:
    """Restore every buffer of ``model`` on exit, so a counting pass leaves no trace in it.

    A forward pass in training mode updates buffers such as batch norm's running statistics;
    the values are copied back in place, so tensors that alias the buffers stay valid.
    """
    saved = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def _storage_bytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


class Recorder(TorchDispatchMode):
    """Record MACs per module path and per operator, and optionally live activation bytes.

    Args:
        root: the model whose submodule names give the paths; its own path is ``""``.
        track_memory: also track the bytes of tensors created by operators while they are alive
            and keep their maximum in ``recording.peak_bytes``.
        op_hook: called as ``op_hook(func, args, kwargs, out, macs)`` after each counted
            operator, with the module stack in ``self.stack`` (used by the spiking counters).
        module_hook: called as ``module_hook(path, module, output)`` after each module's forward.
    """

    def __init__(
        self,
        root: nn.Module,
        *,
        track_memory: bool = False,
        op_hook: OpHook | None = None,
        module_hook: Callable[[str, nn.Module, Any], None] | None = None,
    ) -> None:
        super().__init__()
        self.root = root
        self.recording = Recording()
        self.stack: list[str] = []
        self._module_stack: list[nn.Module] = []
        self._fallback_names = {
            id(module): name for name, module in root.named_modules(remove_duplicate=False)
        }
        self._handles: list[Any] = []
        self._depth = 0
        self._track_memory = track_memory
        self._live_bytes = 0
        self._op_hook = op_hook
        self._module_hook = module_hook

    # Module tracking -------------------------------------------------------------------------

    def _child_path(self, module: nn.Module) -> str | None:
        if not self._module_stack:
            return "" if module is self.root else None
        parent = self._module_stack[-1]
        parent_path = self.stack[-1]
        for name, child in parent._modules.items():
            if child is module:
                return f"{parent_path}.{name}" if parent_path else name
        # Called from a module that does not own it (a module kept in a plain list, or a
        # module of the root called from elsewhere): fall back to its name in the root.
        return self._fallback_names.get(id(module))

    def _pre_hook(self, module: nn.Module, args: Any) -> None:
        path = self._child_path(module)
        if path is None:
            path = f"{self.stack[-1]}.<{type(module).__name__}>" if self.stack else None
        if path is None:
            return
        record = self.recording.modules.get(path)
        if record is None:
            record = ModuleRecord(
                path=path,
                type_name=type(module).__name__,
                depth=0 if path == "" else path.count(".") + 1,
                parameters=sum(p.numel() for p in module.parameters()),
            )
            self.recording.modules[path] = record
        record.calls += 1
        self.stack.append(path)
        self._module_stack.append(module)

    def _post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._module_stack and self._module_stack[-1] is module:
            path = self.stack.pop()
            self._module_stack.pop()
            if self._module_hook is not None:
                self._module_hook(path, module, output)

    def __enter__(self) -> Recorder:
        # Re-entered while decomposing a composite operator: the hooks are already in place.
        self._depth += 1
        if self._depth > 1:
            return super().__enter__()
        hooks = torch.nn.modules.module
        self._handles = [
            hooks.register_module_forward_pre_hook(self._pre_hook),
            hooks.register_module_forward_hook(self._post_hook, always_call=True),
        ]
        try:
            return super().__enter__()
        except BaseException:
            self._depth -= 1
            self._remove_hooks()
            raise

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth > 0:
            super().__exit__(*exc)
            return
        try:
            super().__exit__(*exc)
        finally:
            self._remove_hooks()
            self.stack.clear()
            self._module_stack.clear()

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # Operator recording ----------------------------------------------------------------------

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        plan = _PLANS.get(func)
        if plan is None:
            plan = _PLANS[func] = _plan(func)
        formula, decomposable, aliasing = plan
        if decomposable:
            # Composite operators (``linear``, ``matmul``, ``einsum``, ``conv2d``, attention)
            # reach this mode undecomposed under ``torch.inference_mode``, because the autograd
            # keys that decompose them are skipped. Decompose them here, with this mode active,
            # so the operators they are made of are the ones counted.
            with self:
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        if formula is not None:
            if func in NEEDS_OUTPUT:
                macs = formula(*args, out=out, **kwargs)
            else:
                macs = formula(*args, **kwargs)
            self._add(str(func.overloadpacket), macs)
            if self._op_hook is not None:
                self._op_hook(func, args, kwargs, out, macs)
        elif not aliasing:
            self.recording.other_calls[str(func.overloadpacket)] += 1
        if self._track_memory and not aliasing:
            self._track(out)
        return out

    def _add(self, name: str, macs: int) -> None:
        recording = self.recording
        recording.op_calls[name] += 1
        recording.op_macs[name] += macs
        recording.total_macs += macs
        for path in self.stack:
            recording.modules[path].macs += macs

    def _track(self, out: Any) -> None:
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            size = _storage_bytes(tensor)
            self._live_bytes += size
            self.recording.peak_bytes = max(self.recording.peak_bytes, self._live_bytes)
            weakref.finalize(tensor, self._release, size)

    def _release(self, size: int) -> None:
        self._live_bytes -= size
