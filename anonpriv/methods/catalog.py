"""Every method by short name, in one table: the Lightning CLI, the sweep and ``anonpriv anonymize`` read it.

A method is one :class:`MethodSpec` in :data:`CATALOG` and one config, ``configs/method/<name>.yaml``,
whose ``class_path`` is the spec's ``method``. Its folder holds ``method.py`` (the LightningModule)
and, beside it, the torch-only builder of its anonymizer ``f_A`` that the spec's ``anonymizer`` names,
so that ``anonpriv anonymize`` builds or loads ``f_A`` without Lightning
(:func:`anonpriv.methods.registry.build_anonymizer`). ``tests/test_catalog.py`` checks that every
entry imports and builds and that the configs match.

This module imports nothing outside the standard library: the paths are strings, imported by
:mod:`anonpriv.methods.registry` when a method or an anonymizer is built.
"""

from __future__ import annotations

import dataclasses
import re

from anonpriv.methods.old_names import current_class_path

#: The options every method takes (those of :class:`~anonpriv.methods.AnonymizationMethod` but
#: ``anonymizer``). They configure training; of them only ``clip_shape`` (and, for a model with
#: CLS heads, the label sizes and names) reaches an anonymizer, when its builder takes it.
COMMON_OPTIONS = frozenset({
    "num_actions", "num_privacy", "action_names", "privacy_names", "clip_shape", "utility_model",
    "utility_kwargs", "privacy_model", "privacy_kwargs", "adversarial_loss", "adversarial_weight", "optimizer",
    "lr", "privacy_lr", "anonymizer_lr", "weight_decay", "warmup_epochs", "schedule", "grad_clip",
})


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """One method of the catalog.

    Attributes:
        name: the short name (``configs/method/<name>.yaml``, ``runs/<name>/``, ``--method <name>``).
        method: ``package.Class`` of the method (an
            :class:`~anonpriv.methods.AnonymizationMethod`), as configs write it. The class is
            defined in the package's ``method`` module; its checkpoints record that path
            (``package.method.Class``).
        anonymizer: ``module.name`` of a callable that takes the anonymizer's arguments under the
            method's own option names and returns the anonymizer module; the method builds its
            ``f_A`` with the same callable. Its module imports neither the methods' base class nor
            Lightning.
        training_options: the method's own options that do not change its anonymizer (loss weights,
            schedules, the adversary's shape); building the anonymizer alone accepts and ignores them.
    """

    name: str
    method: str
    anonymizer: str
    training_options: tuple[str, ...] = ()

    @property
    def class_name(self) -> str:
        return self.method.rpartition(".")[2]

    @property
    def checkpoint_class_path(self) -> str:
        """Where the class is defined, as its checkpoints name it (``anonpriv_method``)."""
        package, _, class_name = self.method.rpartition(".")
        return f"{package}.method.{class_name}"

    def names_class(self, class_path: str) -> bool:
        """Whether ``class_path`` (a config's, a checkpoint's, or one the old layout had) is this method's."""
        return current_class_path(class_path) in (self.method, self.checkpoint_class_path)


CATALOG: dict[str, MethodSpec] = {spec.name: spec for spec in (
    MethodSpec("raw", "anonpriv.baselines.raw.RawBaseline", "torch.nn.Identity"),
    MethodSpec("blur", "anonpriv.baselines.blur.BlurBaseline", "anonpriv.baselines.blur.anonymizer.GaussianBlur"),
    MethodSpec("downsample", "anonpriv.baselines.blur.DownsampleBaseline",
               "anonpriv.baselines.blur.anonymizer.DownUpSample"),
    MethodSpec("blackening", "anonpriv.baselines.blackening.BlackeningBaseline",
               "anonpriv.baselines.blackening.anonymizer.Blackening"),
    MethodSpec("face_blur", "anonpriv.baselines.face_blur.FaceBlurBaseline",
               "anonpriv.baselines.face_blur.anonymizer.FaceBlur"),
    MethodSpec("bdq", "anonpriv.baselines.bdq.BDQBaseline", "anonpriv.baselines.bdq.anonymizer.bdq_anonymizer"),
    MethodSpec("spact", "anonpriv.baselines.spact.SPActBaseline", "anonpriv.baselines.spact.anonymizer.spact_anonymizer",
               training_options=("reconstruction_epochs", "ssl_weight", "temperature", "ssl_model", "ssl_kwargs",
                                 "ssl_feature_dim", "projection_dim", "ssl_lr")),
    MethodSpec("token_pruning", "anonpriv.methods.token_pruning.TokenPruningMethod",
               "anonpriv.methods.token_pruning.anonymizer.token_pruning_anonymizer",
               training_options=("keep_ratio_start", "anneal", "act_cls_weight", "priv_cls_weight", "stage_supervision",
                                 "privacy_cls_gradient", "reversal_weight", "attention_map_clips")),
)}


def find_method(name_or_class_path: str) -> MethodSpec | None:
    """The catalog's entry for a short name or for a class path of one of its methods (any spelling
    :meth:`MethodSpec.names_class` knows), else ``None``."""
    if name_or_class_path in CATALOG:
        return CATALOG[name_or_class_path]
    return next((spec for spec in CATALOG.values() if spec.names_class(name_or_class_path)), None)


def short_name(class_path: str) -> str:
    """The short name of a method's class path: its catalog name, else one made from the class name
    (``my_pkg.MyNewMethod`` -> ``my_new``): what ``runs/<name>/`` and a sweep's rows are called.
    The catalog's names are the ones the class names make (``tests/test_catalog.py``)."""
    spec = find_method(class_path)
    return spec.name if spec is not None else name_from_class(class_path)


def name_from_class(class_path: str) -> str:
    """``anonpriv.baselines.raw.RawBaseline`` -> ``raw``; ``...TokenPruningMethod`` -> ``token_pruning``."""
    name = class_path.rsplit(".", 1)[-1]
    name = re.sub(r"(Baseline|Method)$", "", name) or name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
