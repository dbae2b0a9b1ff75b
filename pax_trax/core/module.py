"""The Module base class: an immutable pytree that holds parameters and state.

A module class declares its fields once, in the class body::

    class Scale(pax_trax.Module):
        init_value = pax_trax.static(default=1.0)   # hyperparameter: pytree aux data
        scale = pax_trax.param()                    # trainable leaf
        calls = pax_trax.state()                    # non-trainable leaf

        def __init__(self, init_value=1.0):
            self.init_value = init_value            # fields are writable in __init__ only

        def init_weights_and_state(self, input_signature, key):
            return self.replace(scale=jnp.full(input_signature.shape[-1:], self.init_value),
                                calls=jnp.zeros((), jnp.int32))

        def forward_with_state(self, x):
            return self.replace(calls=self.calls + 1), x * self.scale

The declaration is read once per class (in ``__init_subclass__``) into a
flatten/unflatten pair registered with ``jax.tree_util``, so `jax.jit`,
`jax.grad`, `jax.vmap` and `jax.pmap` take modules directly. Fields:

* ``param()``: trainable arrays (any pytree of arrays, or None before init).
* ``state()``: non-trainable arrays: statistics, RNG keys, counters, caches.
* ``submodule()``: a module, or a tuple/list/dict of modules.
* ``static()``: hashable hyperparameters and structure (aux data).

After ``__init__`` returns the module is frozen; changes make copies
(``replace``, ``update_parameters``, ``train``, ``eval``, ``init``).
"""

from __future__ import annotations

import functools
import math
from operator import itemgetter
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import GetAttrKey, register_pytree_with_keys

from pax_trax.core import shapes as shapes_lib
from pax_trax.core.errors import FrozenModuleError, StateChangeError, at_top

__all__ = [
    "Module",
    "param",
    "state",
    "rng_state",
    "static",
    "submodule",
    "purecall",
    "stateful",
]

_MISSING = object()
_KINDS = ("param", "state", "submodule", "static")


class Field:
    """A declared field of a Module class; see `param`, `state`, `submodule`, `static`."""

    __slots__ = ("kind", "default", "name", "is_rng")

    def __init__(self, kind, default, is_rng=False):
        self.kind = kind
        self.default = default
        self.name = None
        self.is_rng = is_rng

    def __set_name__(self, owner, name):
        self.name = name

    def __repr__(self):
        return f"<{self.kind} field {self.name!r}>"


def param(default=None) -> Any:
    """Declares a trainable field (arrays, or None until initialized)."""
    return Field("param", default)


def state(default=None) -> Any:
    """Declares a non-trainable array field (statistics, RNG keys, counters, caches)."""
    return Field("state", default)


def rng_state(default=None) -> Any:
    """Declares a state field holding a PRNG key; `Module.reseed(key)` replaces it."""
    return Field("state", default, is_rng=True)


def submodule(default=_MISSING) -> Any:
    """Declares a field holding a module or a tuple/list/dict of modules."""
    return Field("submodule", default)


def static(default=_MISSING) -> Any:
    """Declares a hashable hyperparameter, kept as pytree aux data."""
    return Field("static", default)


def _getter(names):
    if not names:
        return lambda d: ()
    if len(names) == 1:
        (only,) = names
        return lambda d: (d[only],)
    return itemgetter(*names)


class Module:
    """Base class of all pax_trax modules. See the module docstring."""

    name = static(default=None)
    n_in = static(default=1)
    n_out = static(default=1)

    # Filled per class by __init_subclass__.
    _pt_fields: dict = {}
    _pt_dynamic: tuple = ()
    _pt_static: tuple = ()
    _pt_params: tuple = ()
    _pt_states: tuple = ()
    _pt_submodules: tuple = ()
    _pt_rngs: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fields = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Field):
                    fields[attr] = value
                elif attr in fields:
                    # A subclass replaced a field by a plain attribute/property.
                    del fields[attr]
        cls._pt_fields = fields
        cls._pt_params = tuple(n for n, f in fields.items() if f.kind == "param")
        cls._pt_states = tuple(n for n, f in fields.items() if f.kind == "state")
        cls._pt_submodules = tuple(n for n, f in fields.items() if f.kind == "submodule")
        cls._pt_rngs = tuple(n for n, f in fields.items() if f.is_rng)
        cls._pt_dynamic = cls._pt_params + cls._pt_states + cls._pt_submodules
        cls._pt_static = tuple(n for n, f in fields.items() if f.kind == "static")

        if "__init__" in cls.__dict__:
            cls.__init__ = _wrap_init(cls.__init__)

        get_dynamic = _getter(cls._pt_dynamic)
        get_static = _getter(cls._pt_static)
        dynamic_names, static_names = cls._pt_dynamic, cls._pt_static
        dynamic_keys = tuple(GetAttrKey(n) for n in dynamic_names)
        new = object.__new__

        def flatten(module):
            d = module.__dict__
            return get_dynamic(d), get_static(d)

        def flatten_with_keys(module):
            d = module.__dict__
            return tuple(zip(dynamic_keys, get_dynamic(d))), get_static(d)

        all_names = dynamic_names + static_names

        def unflatten(aux, children):
            obj = new(cls)
            obj.__dict__.update(zip(all_names, (*children, *aux)))
            return obj

        register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)

    # ------------------------------------------------------------------ fields

    def __setattr__(self, name, value):
        d = self.__dict__
        if "_pt_building" not in d:
            raise FrozenModuleError(
                f"{type(self).__name__} is immutable: cannot set '{name}' after "
                f"construction. Use module.replace({name}=...) to get a changed copy."
            )
        if name not in self._pt_fields:
            raise AttributeError(
                f"{type(self).__name__} has no declared field '{name}'. Declare it in the "
                "class body with pax_trax.param(), state(), submodule() or static(), so "
                "that it is part of the pytree."
            )
        d[name] = value

    def __delattr__(self, name):
        raise FrozenModuleError(f"{type(self).__name__} is immutable: cannot delete '{name}'.")

    def _pt_finish(self):
        """Fills defaults and checks field values once construction is done."""
        d = self.__dict__
        cls = type(self)
        for fname, fld in cls._pt_fields.items():
            if fname not in d:
                if fld.default is _MISSING:
                    raise TypeError(
                        f"{cls.__name__}.__init__ did not set the required field '{fname}'."
                    )
                d[fname] = fld.default
        for fname in cls._pt_static:
            d[fname] = _hashable(d[fname], cls.__name__, fname)
        for fname in cls._pt_submodules:
            d[fname] = _check_submodules(d[fname], cls.__name__, fname)
        if d["name"] is None:
            d["name"] = cls.__name__

    def replace(self, **changes):
        """Returns a copy with the given fields replaced.

        >>> import pax_trax.nn as nn
        >>> nn.Dense(3).replace(name="Logits").name
        'Logits'
        """
        unknown = [k for k in changes if k not in self._pt_fields]
        if unknown:
            raise AttributeError(
                f"{type(self).__name__}.replace: no field(s) {unknown}; the fields are "
                f"{sorted(self._pt_fields)}."
            )
        return self._replace_unchecked(changes)

    def _replace_unchecked(self, changes):
        obj = object.__new__(type(self))
        d = obj.__dict__
        d.update(self.__dict__)
        d.update(changes)
        return obj

    # ------------------------------------------------------------- structure

    def _submodule_values(self):
        d = self.__dict__
        return [d[n] for n in self._pt_submodules]

    @property
    def sublayers(self):
        """The direct submodules, in declaration order (Trax's `sublayers`)."""
        out = []
        for value in self._submodule_values():
            out.extend(_iter_modules(value))
        return tuple(out)

    def named_sublayers(self):
        """Yields `(label, module)` for direct submodules, e.g. `("Serial[1]", dense)`."""
        d = self.__dict__
        many = len(self._pt_submodules) > 1
        for fname in self._pt_submodules:
            value = d[fname]
            prefix = f"{self.name}.{fname}" if many or isinstance(value, Module) else self.name
            if isinstance(value, Module):
                yield f"{self.name}.{fname}", value
            else:
                for key, mod in _iter_labelled(value):
                    yield f"{prefix}{key}", mod

    def map_modules(self, fn: Callable[["Module"], "Module"]) -> "Module":
        """Rebuilds the tree bottom-up, applying `fn` to every module (this one last)."""
        changes = {}
        d = self.__dict__
        for fname in self._pt_submodules:
            value = d[fname]
            if value is not None:
                mapped = _map_modules_in(value, lambda m: m.map_modules(fn))
                if mapped is not value:
                    changes[fname] = mapped
        new = self._replace_unchecked(changes) if changes else self
        return fn(new)

    def modules(self):
        """Yields this module and all modules below it, pre-order."""
        yield self
        for sub in self.sublayers:
            yield from sub.modules()

    # ------------------------------------------------------ params and state

    def parameters(self) -> "Module":
        """The same tree with every state leaf set to None: what optax consumes.

        >>> import pax_trax.nn as nn, numpy as np
        >>> bn = nn.BatchNorm(axis=(0,)).init(np.zeros((4, 3), np.float32))
        >>> bn.parameters().running_mean is None
        True
        """
        changes = {n: None for n in self._pt_states}
        for fname in self._pt_submodules:
            value = self.__dict__[fname]
            if value is not None:
                changes[fname] = _map_modules_in(value, Module.parameters)
        return self._replace_unchecked(changes) if changes else self

    def states(self) -> "Module":
        """The complement of `parameters()`: every parameter leaf set to None.

        `model.states().update_parameters(model.parameters())` rebuilds
        `model`; loops (`lax.scan`) carry `states()` and close over the
        parameters, which stay constant.
        """
        changes = {n: None for n in self._pt_params}
        for fname in self._pt_submodules:
            value = self.__dict__[fname]
            if value is not None:
                changes[fname] = _map_modules_in(value, Module.states)
        return self._replace_unchecked(changes) if changes else self

    def update_parameters(self, params: "Module") -> "Module":
        """Returns this module with its parameters taken from `params`.

        `params` has this module's structure (as from `parameters()`, a
        gradient, or an optax update); state is kept from `self`.
        """
        return _update_parameters(self, params, self.name)

    def reseed(self, key) -> "Module":
        """A copy whose RNG keys (fields declared with `rng_state()`) derive from `key`.

        Each key becomes `fold_in(key, i)` for the i-th initialized RNG field
        in a fixed order, so a step that reseeds from `fold_in(seed, step)`
        is a pure function of its inputs, and data-parallel replicas get
        different dropout masks from `fold_in(key, device_index)`.

        >>> import jax, numpy as np, pax_trax.nn as nn
        >>> m = nn.Serial(nn.Dropout(0.5), nn.Dropout(0.5)).init(np.zeros(3))
        >>> a = m.reseed(jax.random.PRNGKey(7))
        >>> bool((a.layers[0].rng != a.layers[1].rng).any())
        True
        """
        counter = iter(range(1 << 30))

        def fresh(old):
            new = jax.random.fold_in(key, next(counter))
            if jnp.issubdtype(new.dtype, jax.dtypes.prng_key) and not jnp.issubdtype(
                    old.dtype, jax.dtypes.prng_key):
                new = jax.random.key_data(new)
            return new

        def reseed_one(m):
            d = m.__dict__
            changes = {n: fresh(d[n]) for n in m._pt_rngs if d[n] is not None}
            return m._replace_unchecked(changes) if changes else m

        return self.map_modules(reseed_one)

    def state_leaves(self):
        """The state leaves of the whole tree, in a fixed order."""
        leaves = []
        for m in self.modules():
            d = m.__dict__
            for n in m._pt_states:
                leaves.extend(jax.tree_util.tree_leaves(d[n]))
        return leaves

    @property
    def weights(self):
        """Trax-style weights: a leaf's params (bare if one), else sublayer weights."""
        d = self.__dict__
        own = tuple(d[n] for n in self._pt_params)
        subs = tuple(s.weights for s in self.sublayers)
        if not subs:
            return own[0] if len(own) == 1 else own
        return own + subs

    @property
    def state(self):
        """Trax-style state: a leaf's state values, else a tuple of sublayer states."""
        d = self.__dict__
        own = tuple(d[n] for n in self._pt_states)
        subs = tuple(s.state for s in self.sublayers)
        if not subs:
            return own[0] if len(own) == 1 else own
        return own + subs

    def _missing_params(self):
        d = self.__dict__
        return [n for n in self._pt_params if d[n] is None]

    def missing_parameters(self) -> list:
        """Paths of the parameters not created yet, here and below (``[]``: initialized).

        >>> import pax_trax.nn as nn, numpy as np
        >>> nn.Serial(nn.Relu(), nn.Dense(2)).missing_parameters()
        ['Serial[1]/Dense_2.w']
        """
        return list(self._missing_parameter_paths(self.name))

    def _missing_parameter_paths(self, where):
        # Overridden where a None parameter is intended (nn.Shared's tied target).
        for name in self._missing_params():
            yield f"{where}.{name}"
        for i, sub in enumerate(self.sublayers):
            yield from sub._missing_parameter_paths(f"{where}[{i}]/{sub.name}")

    def check_initialized(self):
        """Raises a clear error if a parameter of this module has not been created."""
        missing = self._missing_params()
        if missing:
            raise ValueError(
                f"{self.name} is not initialized (parameters {missing} are None). "
                "Call model = model.init(input_signature_or_example, key) first."
            )

    # ------------------------------------------------------------------ modes

    def train(self) -> "Module":
        """A copy with every `mode='eval'` module switched to `'train'`."""
        return self.map_modules(_set_mode("eval", "train"))

    def eval(self) -> "Module":
        """A copy with every `mode='train'` module switched to `'eval'`."""
        return self.map_modules(_set_mode("train", "eval"))

    # ------------------------------------------------------------------- init

    def init(self, input_signature, key=None) -> "Module":
        """Returns this module with all weights and state created for the input.

        `input_signature` is a ShapeDtype (or tuple of them for several
        inputs) or example data; shapes flow through the model by abstract
        evaluation, so no real compute is spent on the forward pass.

        >>> import pax_trax.nn as nn, numpy as np
        >>> m = nn.Serial(nn.Dense(4), nn.Relu()).init(np.zeros((2, 3)))
        >>> m.sublayers[0].w.shape
        (3, 4)
        """
        # Example data from numpy is often float64; JAX computes in float32
        # unless x64 is enabled, so weights are created for what JAX will see.
        sig = shapes_lib.canonicalize(shapes_lib.signature(input_signature))
        if key is None:
            key = jax.random.PRNGKey(0)
        try:
            module, _ = self.init_with_output_signature(sig, key)
        except Exception as exc:
            if isinstance(exc, (FrozenModuleError, StateChangeError)):
                raise
            err = at_top(self.name, exc)
            if err is exc:
                raise
            raise err from exc
        return module

    def init_from_file(self, file_name, weights_only=False, input_signature=None) -> "Module":
        """Returns this module initialized from a weights file (Trax's `init_from_file`).

        Reads pax_trax checkpoints and Trax 1.4.1 ``model.pkl.gz`` files
        (pickles are read without running code from them); see
        `pax_trax.supervised.weights_file.init_from_file`.
        ``weights_only=True`` keeps this module's own state (e.g. predict caches).

        >>> import os, tempfile, numpy as np, pax_trax.nn as nn
        >>> from pax_trax.supervised.checkpoints import save_module
        >>> path = os.path.join(tempfile.mkdtemp(), 'dense.ckpt')
        >>> save_module(path, nn.Dense(2).init(np.zeros((1, 3), np.float32)))
        >>> nn.Dense(2).init_from_file(path, input_signature=np.zeros((1, 3), np.float32)).w.shape
        (3, 2)
        """
        from pax_trax.supervised.weights_file import init_from_file

        return init_from_file(self, file_name, weights_only=weights_only,
                              input_signature=input_signature)

    def init_weights_and_state(self, input_signature, key) -> "Module":
        """Override in layers with weights or state: return an initialized copy."""
        del input_signature, key
        return self

    def init_with_output_signature(self, input_signature, key):
        """Returns `(initialized module, output signature)`.

        Leaf layers need not override this; combinators do, to thread
        signatures through their sublayers.
        """
        module = self.init_weights_and_state(input_signature, key)
        return module, module.output_signature(input_signature)

    def output_signature(self, input_signature):
        """The output signature for `input_signature`, by abstract evaluation."""
        abstract_inputs = shapes_lib.to_jax(input_signature)
        args = abstract_inputs if _is_packed_call(self) else (abstract_inputs,)
        out = jax.eval_shape(lambda m, a: m.forward_with_state(*a)[1], self, args)
        return shapes_lib.from_jax(out)

    # ------------------------------------------------------------------ calls

    def forward(self, *inputs):
        """Computes outputs from inputs without changing state. Override this."""
        raise NotImplementedError(
            f"{type(self).__name__} defines neither forward nor forward_with_state."
        )

    def forward_with_state(self, *inputs):
        """Returns `(new_module, outputs)`; override in layers that change state."""
        return self, self.forward(*inputs)

    def __call__(self, *inputs, **kwargs):
        if kwargs:
            method = lambda m, *a: m.forward_with_state(*a, **kwargs)  # noqa: E731
            base, new, outputs = _call_top(self, inputs, method=method)
        else:
            base, new, outputs = _call_top(self, inputs)
        if new is not base and _state_changed(base, new):
            raise StateChangeError(
                f"{self.name}: this call changes the module's state (batch statistics, "
                "an RNG key or a cache), which a plain call would lose. Write "
                "`model, y = pax_trax.purecall(model, x)` to get the updated module, or "
                "call `model.eval()` for a call that keeps state fixed."
            )
        return outputs

    # --------------------------------------------------------------- display

    def __repr__(self):
        d = self.__dict__
        if "_pt_building" in d:  # e.g. an error raised inside __init__
            return f"<{type(self).__name__} under construction>"
        label = d["name"]
        if d["n_in"] != 1:
            label += f"_in{d['n_in']}"
        if d["n_out"] != 1:
            label += f"_out{d['n_out']}"
        subs = self._sublayers_to_print()
        if not subs:
            return label
        inner = "\n".join("  " + repr(s).replace("\n", "\n  ") for s in subs)
        return f"{label}[\n{inner}\n]"

    def _sublayers_to_print(self):
        return self.sublayers

    def summary(self) -> str:
        """A table of the modules with their parameter shapes and counts."""
        from pax_trax.core.summary import summary

        return summary(self)


# ---------------------------------------------------------------------------
# Construction helpers


def _wrap_init(init):
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        d = self.__dict__
        outermost = "_pt_building" not in d
        if outermost:
            d["_pt_building"] = True
        try:
            init(self, *args, **kwargs)
        finally:
            if outermost:
                del d["_pt_building"]
        if outermost:
            self._pt_finish()

    return __init__


def _hashable(value, cls_name, fname):
    if isinstance(value, list):
        value = tuple(_hashable(v, cls_name, fname) for v in value)
    if isinstance(value, (np.ndarray, jax.Array)):
        raise TypeError(
            f"{cls_name}.{fname} is a static field but got an array; declare array "
            "fields with pax_trax.param() or pax_trax.state()."
        )
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"{cls_name}.{fname} is a static field and must be hashable (it is part of "
            f"the jit cache key), got {type(value).__name__}: {value!r}."
        ) from None
    return value


def _check_submodules(value, cls_name, fname):
    if value is None or isinstance(value, Module):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_check_submodules(v, cls_name, fname) for v in value)
    if isinstance(value, dict):
        return {k: _check_submodules(v, cls_name, fname) for k, v in value.items()}
    raise TypeError(
        f"{cls_name}.{fname} holds submodules, got {type(value).__name__}: {value!r}. "
        "Wrap plain functions with nn.Fn or nn.Lambda."
    )


def _iter_modules(value):
    if value is None:
        return
    if isinstance(value, Module):
        yield value
    elif isinstance(value, tuple):
        for v in value:
            yield from _iter_modules(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _iter_modules(v)


def _iter_labelled(value, prefix=""):
    if isinstance(value, Module):
        yield prefix, value
    elif isinstance(value, tuple):
        for i, v in enumerate(value):
            yield from _iter_labelled(v, f"{prefix}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _iter_labelled(v, f"{prefix}[{k!r}]")


def _map_modules_in(value, fn):
    """Maps `fn` over the modules in a submodule field; unchanged input is returned as is."""
    if isinstance(value, Module):
        return fn(value)
    if value is None:
        return None
    if isinstance(value, tuple):
        mapped = tuple(_map_modules_in(v, fn) for v in value)
        return value if all(a is b for a, b in zip(mapped, value)) else mapped
    if isinstance(value, dict):
        mapped = {k: _map_modules_in(v, fn) for k, v in value.items()}
        return value if all(mapped[k] is value[k] for k in value) else mapped
    raise TypeError(f"Unexpected value in a submodule field: {value!r}")


def _set_mode(old, new):
    def fn(m):
        if "mode" in m._pt_fields and m.__dict__["mode"] == old:
            return m._replace_unchecked({"mode": new})
        return m

    return fn


def _update_parameters(module, params, path):
    if type(params) is not type(module):
        raise ValueError(
            f"update_parameters at {path}: expected a {type(module).__name__}, got "
            f"{type(params).__name__}. The parameter tree must have the module's structure."
        )
    d, pd = module.__dict__, params.__dict__
    for fname in module._pt_static:
        if fname in ("name",):
            continue
        if d[fname] != pd[fname] and fname in ("n_in", "n_out"):
            raise ValueError(
                f"update_parameters at {path}: {fname} differs ({d[fname]} vs {pd[fname]})."
            )
    changes = {n: pd[n] for n in module._pt_params}
    for fname in module._pt_submodules:
        mine, theirs = d[fname], pd[fname]
        changes[fname] = _zip_modules(mine, theirs, f"{path}.{fname}")
    return module._replace_unchecked(changes)


def _zip_modules(mine, theirs, path):
    if isinstance(mine, Module):
        return _update_parameters(mine, theirs, f"{path}/{mine.name}")
    if mine is None:
        return None
    if isinstance(mine, tuple):
        if not isinstance(theirs, tuple) or len(theirs) != len(mine):
            raise ValueError(
                f"update_parameters at {path}: expected {len(mine)} submodules, got "
                f"{theirs!r:.80}."
            )
        return tuple(_zip_modules(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(mine, theirs)))
    if isinstance(mine, dict):
        if not isinstance(theirs, dict) or set(theirs) != set(mine):
            raise ValueError(f"update_parameters at {path}: submodule keys differ.")
        return {k: _zip_modules(v, theirs[k], f"{path}[{k!r}]") for k, v in mine.items()}
    raise TypeError(f"Unexpected value in a submodule field at {path}: {mine!r}")


# ---------------------------------------------------------------------------
# Calling


def _is_packed_call(module):
    """Trax-style layers take one argument: a bare array or a tuple of n_in arrays."""
    return getattr(module, "_pt_multi_arg_call", False)


def _stop_state_gradients(module):
    """Returns the module with stop_gradient on its float state leaves."""

    def stop(m):
        if not m._pt_states:
            return m
        d = m.__dict__
        changes = {}
        for n in m._pt_states:
            if d[n] is not None:
                changes[n] = jax.tree_util.tree_map(_stop_if_float, d[n])
        return m._replace_unchecked(changes) if changes else m

    return module.map_modules(stop)


def _stop_if_float(x):
    if isinstance(x, (jax.Array, np.ndarray)) and jnp.issubdtype(x.dtype, jnp.inexact):
        return jax.lax.stop_gradient(x)
    return x


def _call_top(module, inputs, method=None):
    if method is None and not inputs and not _is_packed_call(module):
        inputs = ((),)  # a layer with n_in == 0 receives an empty tuple, as in Serial
    try:
        module = _stop_state_gradients(module)
        module.check_initialized()
        if method is None:
            return module, *_unpack(module.forward_with_state(*inputs), module)
        return module, *_unpack(method(module, *inputs), module)
    except Exception as exc:
        if isinstance(exc, (FrozenModuleError, StateChangeError)):
            raise
        err = at_top(module.name, exc)
        if err is exc:
            raise
        raise err from exc


def _unpack(result, module):
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Module)):
        raise TypeError(
            f"{type(module).__name__}.forward_with_state must return (new_module, outputs), "
            f"got {type(result).__name__}."
        )
    return result


def _state_changed(old, new):
    a, b = old.state_leaves(), new.state_leaves()
    if len(a) != len(b):
        return True
    return any(x is not y for x, y in zip(a, b))


def stateful(method):
    """Marks a module method that returns `(new_module, output)`.

    Calling it plainly returns the output if the state is unchanged and raises
    otherwise; `pax_trax.purecall(module.method, *args)` returns both.

    >>> import pax_trax.nn as nn
    >>> seq = nn.RngSeq(seed=0)
    >>> seq, key = purecall(seq.next_rng_key)
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        base, new, out = _call_top(self, args, method=lambda m, *a: method(m, *a, **kwargs))
        if new is not base and _state_changed(base, new):
            raise StateChangeError(
                f"{self.name}.{method.__name__} changes the module's state, which a plain "
                f"call would lose. Write `module, out = pax_trax.purecall(module."
                f"{method.__name__}, ...)` to get the updated module."
            )
        return out

    wrapper._pt_stateful_impl = method
    return wrapper


def purecall(fn, *args, **kwargs):
    """Calls a module (or a `@stateful` method) and returns `(new_module, output)`.

    >>> import pax_trax.nn as nn, numpy as np, jax
    >>> drop = nn.Dropout(0.5).init(np.zeros(4))
    >>> drop2, y = purecall(drop, np.ones(4, np.float32))
    >>> bool((drop2.rng != drop.rng).any())
    True
    """
    if isinstance(fn, Module):
        if kwargs:
            method = lambda m, *a: m.forward_with_state(*a, **kwargs)
            _, new, out = _call_top(fn, args, method=method)
        else:
            _, new, out = _call_top(fn, args)
        return new, out
    impl = getattr(getattr(fn, "__func__", None), "_pt_stateful_impl", None)
    owner = getattr(fn, "__self__", None)
    if impl is None or not isinstance(owner, Module):
        raise TypeError(
            "purecall expects a module or a bound method marked @pax_trax.stateful, "
            f"got {fn!r}."
        )
    _, new, out = _call_top(owner, args, method=lambda m, *a: impl(m, *a, **kwargs))
    return new, out


def num_parameters(module) -> int:
    """Number of trainable scalars in `module`."""
    leaves = jax.tree_util.tree_leaves(module.parameters())
    return int(sum(math.prod(np.shape(x)) for x in leaves))
