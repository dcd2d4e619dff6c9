"""Options and submodules of a method that checkpoints written earlier name otherwise, mapped to their names now.

The method's own privacy model (docs/glossary.md) was once called ``budget``: a checkpoint of that
time stores its weights under ``budget.*`` and its learning rate as the option ``budget_lr``. Such a
checkpoint loads: :func:`current_options` is applied to the options read from a checkpoint
(:func:`anonpriv.methods.registry.read_checkpoint`), and every method reads a state dict through
:func:`current_state_dict_keys` (a load pre-hook of :class:`~anonpriv.methods.AnonymizationMethod`),
which also covers a method nested in another (the one the evaluation protocol freezes). Class paths
that moved are mapped by :mod:`anonpriv.methods.class_paths`. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

#: Old option name -> its name now.
RENAMED_OPTIONS: dict[str, str] = {"budget_lr": "privacy_lr"}

#: Old submodule (attribute) name of a method -> its name now.
RENAMED_SUBMODULES: dict[str, str] = {"budget": "privacy_model"}


def current_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with every renamed option under its name now, in the same order.

    Raises ``ValueError`` if an option is given under both its old and its new name.
    """
    both = sorted(old for old, new in RENAMED_OPTIONS.items() if old in options and new in options)
    if both:
        raise ValueError(f"options {both} and {[RENAMED_OPTIONS[o] for o in both]} name the same option: keep one.")
    return {RENAMED_OPTIONS.get(key, key): value for key, value in options.items()}


def current_state_dict_keys(state_dict: MutableMapping[str, Any], prefix: str = "",
                            renamed: Mapping[str, str] = RENAMED_SUBMODULES) -> None:
    """Rename, in place, the entries of ``state_dict`` that lie under ``prefix`` + an old submodule
    name (``budget.``) to lie under the name now (``privacy_model.``), keeping the entries' order.

    ``prefix`` is where the method sits in the state dict (``""`` for the module loaded, or e.g.
    ``"anonymizer.method."`` for a method nested in the evaluation protocol). A state dict without
    old names is left as it is.
    """
    def current(key: str) -> str:
        if not key.startswith(prefix):
            return key
        head, dot, rest = key[len(prefix):].partition(".")
        return f"{prefix}{renamed[head]}{dot}{rest}" if dot and head in renamed else key

    keys = list(state_dict)
    new_keys = [current(key) for key in keys]
    if new_keys == keys:
        return
    clash = sorted(new for key, new in zip(keys, new_keys) if new != key and new in state_dict)
    if clash:
        raise ValueError(f"the state dict holds {clash[0]!r} under its old name and its name now: keep one.")
    entries = [(new, state_dict[key]) for key, new in zip(keys, new_keys)]
    state_dict.clear()
    state_dict.update(entries)
