"""The sweep file (``configs/sweep/*.yaml``): what it holds, read and validated with one-line errors.

Paths to other config files are relative to the sweep file's own folder (as ``configs/evaluate.yaml``
names ``evaluation/protocol.yaml``); ``out`` is relative to the directory the command runs in (as a
trainer's ``save_dir: runs`` is). Every ``overrides`` mapping holds dotted keys below the object the
config path names, each passed to the ``anonpriv`` CLI as ``--<prefix>.<key> <value as JSON>``.

.. code-block:: yaml

    out: results                  # tables and runs; --out overrides
    seeds: [0, 1, 2]              # every row once per seed; --seeds overrides
    launcher: {name: local, jobs: 2}   # how the runs run (anonpriv.sweep.launchers); --jobs overrides jobs
      # local: jobs, gpus (default: every visible GPU when the trainer asks for one), devices (GPUs per run)
      # slurm (anonpriv.sweep.slurm): partition, devices, num_nodes, cpus_per_task, mem_gb, hours, sbatch,
      #   setup, train / evaluate (their own resources), dependencies, wait, ...; devices and num_nodes
      #   also become every run's --trainer.devices / --trainer.num_nodes
    datasets:                     # by short name
      synthetic:
        data: ../data/synthetic.yaml   # a data config
        overrides: {}             # --data.<key>: e.g. source.init_args.root: /data/ucf101, batch_size: 8
        title: synthetic          # optional: the name the tables use (default: the short name)
        folder: .                 # optional: its tables and runs go to <out>/<folder> (default: the short name)
    methods:                      # the rows, in table order, by row name
      raw: {config: ../method/raw.yaml}   # training-free: evaluated by its registered name with the
                                          # config's options (init_args) and overrides
      blur_strong: {config: ../method/blur.yaml, overrides: {kernel_size: 13, sigma: 4.0}}
      bdq: {config: ../method/bdq.yaml, train: true}    # learned: `anonpriv fit` first, then its checkpoint
      # method: the registered name (default: from the config's class_path, else the row name)
      # curve: true marks a point of the token-pruning trade-off curve (its own table and the plot's curve)
    train:                        # the anonymizer training recipe of every learned method
      epochs: 5                   # --trainer.max_epochs, the same for all (optional: the trainer's own)
      trainer: ../trainer/cpu.yaml
      trainer_overrides: {}       # --trainer.<key>
      method_overrides: {}        # --model.init_args.<key>, for every learned method
    evaluation:                   # the honest protocol: fresh models on the frozen anonymizer's output
      config: ../evaluation/protocol.yaml
      epochs: 6                   # the fresh models' --trainer.max_epochs (optional)
      trainer: ../trainer/cpu.yaml
      trainer_overrides: {}
      overrides: {}               # --model.init_args.<key> of the protocol (face_rate: true, ...)
    table1: [synthetic]           # optional: the datasets with a Table 1 (default: all)
    table2:                       # optional: each entry is one Table 2
      - kind: transfer            # anonymizer trained on source (its Table 1 training), frozen; fresh
        source: vp_ucf            # models trained and tested on target's clips
        target: vp_hmdb
        overrides: {}             # optional --data.<key> of the target
      - kind: novel               # within one dataset: anonymizer trained with `seen`, evaluated with `novel`
        dataset: synthetic
        seen: {actions: [...], attributes: [...]}
        novel: {actions: [...], attributes: [...]}
      # both: methods (default: raw and the learned methods), title, folder (transfer: <source>_to_<target>)

Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER = "???"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SweepConfigError(ValueError):
    """A problem with the sweep file, stated in one line with the key and the fix."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    data: Path
    overrides: dict[str, Any]
    title: str
    folder: str


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    name: str  # the row name
    method: str  # the registered method name (what the protocol builds a training-free method from)
    config: Path | None
    overrides: dict[str, Any]
    train: bool
    curve: bool

    def options(self) -> dict[str, Any]:
        """A training-free method's options: its config's ``init_args``, then the overrides."""
        init_args = {}
        if self.config is not None:
            init_args = dict((read_yaml(self.config, f"methods.{self.name}.config") or {}).get("init_args") or {})
        return {**init_args, **self.overrides}


@dataclasses.dataclass(frozen=True)
class TrainRecipe:
    epochs: int | None
    trainer: Path
    trainer_overrides: dict[str, Any]
    method_overrides: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class EvaluationSpec:
    config: Path
    epochs: int | None
    trainer: Path
    trainer_overrides: dict[str, Any]
    overrides: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Table2Spec:
    """One Table 2. ``transfer``: the source dataset's Table 1 anonymizers, evaluated on the target
    (``evaluate_data``: overrides of the target's data). ``novel``: source = target; the anonymizers are
    trained with ``train_data`` and evaluated with ``evaluate_data`` (data overrides selecting labels)."""

    kind: str  # "transfer" or "novel"
    source: str
    target: str
    methods: tuple[str, ...]
    title: str | None
    folder: str | None  # transfer only (novel writes into the dataset's folder)
    train_data: dict[str, Any]
    evaluate_data: dict[str, Any]

    @property
    def name(self) -> str:
        return f"novel {self.source}" if self.kind == "novel" else f"{self.source} -> {self.target}"


@dataclasses.dataclass(frozen=True)
class LauncherSpec:
    name: str
    options: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    path: Path
    out: Path
    seeds: tuple[int, ...]
    launcher: LauncherSpec
    datasets: dict[str, DatasetSpec]
    methods: dict[str, MethodSpec]
    train: TrainRecipe | None
    evaluation: EvaluationSpec
    table1: tuple[str, ...]
    table2: tuple[Table2Spec, ...]

    def select(self, methods: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
               out: Path | None = None, jobs: int | None = None) -> SweepConfig:
        """This sweep restricted to some of its methods, with other seeds, output folder or job count
        (the command line's ``--methods``, ``--seeds``, ``--out``, ``--jobs``)."""
        config = self
        if methods is not None:
            unknown = [m for m in methods if m not in self.methods]
            if unknown or not methods:
                raise SweepConfigError(f"--methods {','.join(methods)}: {_unknown(unknown, self.methods, 'method')}"
                                       if unknown else "--methods: give at least one method")
            keep = {name: spec for name, spec in self.methods.items() if name in methods}
            table2 = tuple(dataclasses.replace(t, methods=tuple(m for m in t.methods if m in keep)) for t in self.table2)
            config = dataclasses.replace(config, methods=keep, table2=tuple(t for t in table2 if t.methods))
        if seeds is not None:
            config = dataclasses.replace(config, seeds=_seeds(list(seeds), "--seeds"))
        if out is not None:
            config = dataclasses.replace(config, out=Path(out))
        if jobs is not None:
            if "jobs" not in _launcher_class(self.launcher.name).option_names():
                raise SweepConfigError(f"--jobs: launcher {self.launcher.name!r} has no jobs option")
            launcher = LauncherSpec(self.launcher.name, {**self.launcher.options, "jobs": jobs})
            try:
                _launcher_class(launcher.name).validate(launcher.options)
            except ValueError as error:
                raise SweepConfigError(f"--jobs {jobs}: {error}") from None
            config = dataclasses.replace(config, launcher=launcher)
        return config


# -- reading ------------------------------------------------------------------------------------------
def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep file; :class:`SweepConfigError` names the first problem and its fix."""
    path = Path(path)
    if not path.is_file():
        raise SweepConfigError(f"sweep config {str(path)!r} does not exist: pass a file such as "
                               "configs/sweep/synthetic.yaml")
    raw = read_yaml(path, "sweep config")
    if not isinstance(raw, Mapping):
        raise SweepConfigError(f"{path}: the sweep config must be a mapping of keys (out, seeds, datasets, methods, ...)")
    return _Reader(path).config(raw)


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's content; a parse or read error is a one-line :class:`SweepConfigError`."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SweepConfigError(f"{what} {str(path)!r} is not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    except OSError as error:
        raise SweepConfigError(f"{what} {str(path)!r} cannot be read: {error.strerror or error}") from None


def _unknown(names: Sequence[str], known: Sequence[str], what: str) -> str:
    name = names[0]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {what} {name!r}: {hint}known: {', '.join(known)}"


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if (not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool) for s in value)
            or len(set(value)) != len(value)):
        raise SweepConfigError(f"{where}: give distinct integer seeds, e.g. [0, 1, 2] (got {value!r})")
    return tuple(value)


def _launcher_class(name: str):
    from anonpriv.sweep.launchers import LAUNCHERS, launcher_class

    if name not in LAUNCHERS:
        raise SweepConfigError(f"launcher.name: {_unknown([name], list(LAUNCHERS), 'launcher')}")
    return launcher_class(name)


class _Reader:
    """Validates one sweep file; every error names the file and the key."""

    TOP = ("out", "seeds", "launcher", "datasets", "methods", "train", "evaluation", "table1", "table2")
    REQUIRED = ("out", "seeds", "datasets", "methods", "evaluation")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path.resolve().parent

    def error(self, where: str, message: str) -> SweepConfigError:
        return SweepConfigError(f"{self.path}: {where}: {message}")

    def keys(self, value: Any, where: str, known: Sequence[str], required: Sequence[str] = ()) -> Mapping:
        if not isinstance(value, Mapping):
            raise self.error(where, f"expected a mapping with keys {', '.join(known)}, got {value!r}")
        for key in value:
            if key not in known:
                raise self.error(where, _unknown([str(key)], known, "key"))
        for key in required:
            if key not in value:
                raise self.error(where, f"missing key {key!r} (keys: {', '.join(known)})")
        return value

    def name(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.error(where, f"{value!r} is not a usable name: letters, digits, '_', '.', '-' (it names folders)")
        return value

    def file(self, value: Any, where: str) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise self.error(where, f"expected the path of a config file, got {value!r}")
        resolved = (self.folder / Path(value).expanduser()).resolve()
        if not resolved.is_file():
            raise self.error(where, f"{value} does not exist (looked for {resolved}; paths are relative to the "
                                    "sweep config's folder)")
        return resolved

    def overrides(self, value: Any, where: str, prefix: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(where, f"expected a mapping of dotted keys to values (each becomes --{prefix}.<key>), "
                                    f"got {value!r}")
        for key in value:
            if not isinstance(key, str) or not key or key.startswith("-") or " " in key:
                raise self.error(where, f"key {key!r}: write the key below --{prefix}, e.g. "
                                        f"{'source.init_args.root' if prefix == 'data' else 'max_epochs'}")
            if key.startswith(f"{prefix}."):
                raise self.error(where, f"key {key!r}: leave out the '{prefix}.' prefix ({key[len(prefix) + 1:]!r})")
        return dict(value)

    def epochs(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error(where, f"expected a positive number of epochs, got {value!r}")
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(where, f"expected a non-empty string, got {value!r}")
        return value

    # -- sections -----------------------------------------------------------------------------------
    def config(self, raw: Mapping) -> SweepConfig:
        self.keys(raw, "top level", self.TOP, self.REQUIRED)
        out = Path(self.string(raw["out"], "out"))
        seeds = _seeds(raw["seeds"], f"{self.path}: seeds")
        launcher = self.launcher(raw.get("launcher", {"name": "local"}))
        datasets = self.datasets(raw["datasets"])
        methods = self.methods(raw["methods"])
        train = self.train(raw["train"]) if raw.get("train") is not None else None
        learned = [m.name for m in methods.values() if m.train]
        if learned and train is None:
            raise self.error(f"methods.{learned[0]}", "train: true needs the top-level train section "
                                                        "(epochs, trainer): how the anonymizers are trained")
        evaluation = self.evaluation(raw["evaluation"])
        table1 = self.table1(raw.get("table1"), datasets)
        table2 = tuple(self.table2(entry, f"table2[{i}]", datasets, methods)
                       for i, entry in enumerate(self.list(raw.get("table2") or [], "table2")))
        config = SweepConfig(self.path, out, seeds, launcher, datasets, methods, train, evaluation, table1, table2)
        self.check_folders(config)
        return config

    def list(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise self.error(where, f"expected a list, got {value!r}")
        return value

    def launcher(self, value: Any) -> LauncherSpec:
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, Mapping):
            raise self.error("launcher", f"expected a mapping such as {{name: local, jobs: 2}}, got {value!r}")
        options = {k: v for k, v in value.items() if k != "name"}
        name = value.get("name", "local")
        try:
            _launcher_class(name).validate(options)
        except SweepConfigError as error:
            raise self.error("launcher", str(error).removeprefix("launcher.name: ")) from None
        except ValueError as error:
            raise self.error("launcher", str(error)) from None
        return LauncherSpec(name, options)

    def datasets(self, value: Any) -> dict[str, DatasetSpec]:
        if not isinstance(value, Mapping) or not value:
            raise self.error("datasets", "expected a mapping of short names to {data: <data config>, overrides: {...}}")
        specs = {}
        for name, entry in value.items():
            where = f"datasets.{name}"
            self.name(name, where)
            entry = self.keys(entry, where, ("data", "overrides", "title", "folder"), ("data",))
            folder = entry.get("folder", name)
            if folder != "." and not (isinstance(folder, str) and all(_NAME.match(p) for p in folder.split("/"))):
                raise self.error(f"{where}.folder", f"{folder!r}: give a relative folder name, or '.' for out itself")
            specs[name] = DatasetSpec(name, self.file(entry["data"], f"{where}.data"),
                                      self.overrides(entry.get("overrides"), f"{where}.overrides", "data"),
                                      self.string(entry.get("title", name), f"{where}.title"), folder)
        return specs

    def methods(self, value: Any) -> dict[str, MethodSpec]:
        if not isinstance(value, Mapping) or not value:
            raise self.error("methods", "expected a mapping of row names to {config: <method config>, ...}")
        specs = {}
        for name, entry in value.items():
            where = f"methods.{name}"
            self.name(name, where)
            entry = self.keys(entry if entry is not None else {}, where,
                              ("method", "config", "overrides", "train", "curve"))
            config = self.file(entry["config"], f"{where}.config") if entry.get("config") is not None else None
            method = entry.get("method") or self.method_of(config, where) or name
            train = entry.get("train", False)
            curve = entry.get("curve", False)
            for key, flag in (("train", train), ("curve", curve)):
                if not isinstance(flag, bool):
                    raise self.error(f"{where}.{key}", f"expected true or false, got {flag!r}")
            if train and config is None:
                raise self.error(where, "train: true needs config: the method config that `anonpriv fit` trains")
            specs[name] = MethodSpec(name, self.string(method, f"{where}.method"), config,
                                     self.overrides(entry.get("overrides"), f"{where}.overrides", "model.init_args"),
                                     train, curve)
        return specs

    def method_of(self, config: Path | None, where: str) -> str | None:
        """The catalog name a method config's ``class_path`` stands for (``anonpriv.baselines.bdq.BDQBaseline`` -> ``bdq``)."""
        if config is None:
            return None
        content = read_yaml(config, f"{where}.config")
        class_path = content.get("class_path") if isinstance(content, Mapping) else None
        if not isinstance(class_path, str):
            raise self.error(f"{where}.config", f"{config} has no class_path: give a method config such as "
                                                "configs/method/bdq.yaml")
        from anonpriv.methods.catalog import short_name  # torch-free

        return short_name(class_path)

    def train(self, value: Any) -> TrainRecipe:
        entry = self.keys(value, "train", ("epochs", "trainer", "trainer_overrides", "method_overrides"), ("trainer",))
        return TrainRecipe(self.epochs(entry.get("epochs"), "train.epochs"), self.file(entry["trainer"], "train.trainer"),
                           self.overrides(entry.get("trainer_overrides"), "train.trainer_overrides", "trainer"),
                           self.overrides(entry.get("method_overrides"), "train.method_overrides", "model.init_args"))

    def evaluation(self, value: Any) -> EvaluationSpec:
        entry = self.keys(value, "evaluation", ("config", "epochs", "trainer", "trainer_overrides", "overrides"),
                          ("config", "trainer"))
        return EvaluationSpec(self.file(entry["config"], "evaluation.config"),
                              self.epochs(entry.get("epochs"), "evaluation.epochs"),
                              self.file(entry["trainer"], "evaluation.trainer"),
                              self.overrides(entry.get("trainer_overrides"), "evaluation.trainer_overrides", "trainer"),
                              self.overrides(entry.get("overrides"), "evaluation.overrides", "model.init_args"))

    def table1(self, value: Any, datasets: Mapping[str, DatasetSpec]) -> tuple[str, ...]:
        if value is None:
            return tuple(datasets)
        for name in self.list(value, "table1"):
            if name not in datasets:
                raise self.error("table1", _unknown([str(name)], list(datasets), "dataset"))
        if len(set(value)) != len(value):
            raise self.error("table1", f"{value} names a dataset twice")
        return tuple(value)

    def table2(self, value: Any, where: str, datasets: Mapping[str, DatasetSpec],
               methods: Mapping[str, MethodSpec]) -> Table2Spec:
        if not isinstance(value, Mapping) or value.get("kind") not in ("transfer", "novel"):
            raise self.error(f"{where}.kind", "give kind: transfer (source -> target dataset) or kind: novel "
                                              "(one dataset, seen -> novel labels)")
        common = ("kind", "methods", "title")
        if value["kind"] == "transfer":
            entry = self.keys(value, where, (*common, "source", "target", "overrides", "folder"), ("source", "target"))
            source, target = entry["source"], entry["target"]
            for key, name in (("source", source), ("target", target)):
                if name not in datasets:
                    raise self.error(f"{where}.{key}", _unknown([str(name)], list(datasets), "dataset"))
            if source == target:
                raise self.error(where, f"source and target are both {source!r}: a transfer needs two datasets "
                                        "(kind: novel splits one dataset's labels)")
            folder = entry.get("folder", f"{source}_to_{target}")
            self.name(folder, f"{where}.folder")
            train_data, evaluate_data = {}, self.overrides(entry.get("overrides"), f"{where}.overrides", "data")
        else:
            entry = self.keys(value, where, (*common, "dataset", "seen", "novel"), ("dataset", "seen", "novel"))
            source = target = entry["dataset"]
            if source not in datasets:
                raise self.error(f"{where}.dataset", _unknown([str(source)], list(datasets), "dataset"))
            folder = None
            train_data = self.overrides(entry["seen"], f"{where}.seen", "data")
            evaluate_data = self.overrides(entry["novel"], f"{where}.novel", "data")
            if not train_data or not evaluate_data:
                raise self.error(where, "seen and novel must each select something (e.g. actions: [...], attributes: [...])")
        default = [m.name for m in methods.values() if not m.curve and (m.train or m.name == "raw")]
        rows = entry.get("methods", default)
        for name in self.list(rows, f"{where}.methods"):
            if name not in methods:
                raise self.error(f"{where}.methods", _unknown([str(name)], list(methods), "method"))
        title = self.string(entry["title"], f"{where}.title") if "title" in entry else None
        return Table2Spec(value["kind"], source, target, tuple(rows), title, folder, train_data, evaluate_data)

    def check_folders(self, config: SweepConfig) -> None:
        """Every dataset and transfer writes its runs and tables into a folder of its own."""
        owners: dict[str, str] = {}
        places = [(d.folder, f"datasets.{d.name}") for d in config.datasets.values()]
        places += [(t.folder, f"table2 {t.name}") for t in config.table2 if t.folder is not None]
        for folder, owner in places:
            normal = Path(folder).as_posix()
            if normal in owners:
                raise self.error(owner, f"writes into folder {folder!r} like {owners[normal]}: give one of them "
                                        "another folder")
            owners[normal] = owner
        novel = [t.source for t in config.table2 if t.kind == "novel"]
        if len(set(novel)) != len(novel):
            raise self.error("table2", "two kind: novel entries for one dataset would write one table2.md")
