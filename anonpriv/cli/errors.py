"""Configuration errors of the ``anonpriv`` commands: the user's to fix, so printed as one line.

An error raised while the configuration is turned into objects (a bad value, a missing dataset or
label file, ``--ckpt_path last`` with nothing to load) is marked by the Lightning CLI
(:class:`anonpriv.cli.lightning.MarksConfigurationErrors`); :func:`anonpriv.cli.main` prints a
marked one as ``anonpriv fit: error: <message>`` alone, exit status 2, like LightningCLI's own
errors for unknown options. Torch-free: the dispatcher and the sweep's report read it.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Errors raised while the configuration is turned into objects: the user's to fix, not a bug.
CONFIGURATION_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError)


def mark_configuration_error(error: BaseException) -> None:
    """Mark ``error`` as the user's to fix: :func:`anonpriv.cli.main` prints it as one line."""
    error.anonpriv_configuration_error = True


def is_configuration_error(error: BaseException) -> bool:
    return isinstance(error, CONFIGURATION_ERRORS) and getattr(error, "anonpriv_configuration_error", False)


def own_message(message: str) -> str:
    """jsonargparse reports an error raised while building a model given by ``class_path`` as "Does not
    validate against any of the Union subtypes", with the real message among its ``- `` entries and
    the whole config after them; keep only the real message."""
    if not message.startswith("Does not validate against any of the Union subtypes"):
        return message
    entries = [line.strip()[2:] for line in message.splitlines() if line.strip().startswith("- ")]
    own = [e for e in entries if not e.startswith("Expected a <class")]
    return own[0] if own else message


def one_line_message(error: BaseException) -> str:
    """The message of a configuration error, without the quotes ``KeyError`` adds and without
    jsonargparse's report around it."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    return own_message(str(message))


def moved_class_path_error(args: list[str]) -> str | None:
    """A one-line error when a config file or an argument names a class path that has moved
    (:data:`anonpriv.methods.old_names.MOVED_CLASS_PATHS`, e.g. ``baselines.RawBaseline``) or an
    option that was renamed (:data:`anonpriv.methods.old_names.RENAMED_OPTIONS`, ``budget_lr``), as a
    config saved beside an old run does: jsonargparse would only say the module does not exist or
    the key is not accepted."""
    from anonpriv.methods.old_names import MOVED_CLASS_PATHS, RENAMED_OPTIONS

    sources = [("the command line", " ".join(args))]
    for i, arg in enumerate(args):
        # a config file: after -c/--config, or given to any option as a YAML path (--model FILE, as the sweep does)
        if arg.startswith("--") and "=" in arg:
            option, path = arg.split("=", 1)
        elif arg.startswith("-") and i + 1 < len(args):
            option, path = arg, args[i + 1]
        else:
            continue
        is_config = option in ("-c", "--config") or path.endswith((".yaml", ".yml"))
        if is_config and Path(path).is_file():
            text = Path(path).read_text(errors="replace")  # comments may name old paths: not a config's use
            sources.append((path, "\n".join(line.split("#", 1)[0] for line in text.splitlines())))
    for where, text in sources:
        for old, new in MOVED_CLASS_PATHS.items():
            if re.search(rf"(?<![\w.]){re.escape(old)}(?![\w.])", text):
                return (f"{where} names the class path {old!r}, which is now {new!r} (the baselines are "
                        f"installed as anonpriv.baselines); replace it there (anonpriv/methods/old_names.py "
                        "lists every moved path).")
        for old, new in RENAMED_OPTIONS.items():
            if re.search(rf"(?<![\w]){re.escape(old)}(?![\w])", text):
                return (f"{where} names the option {old!r}, which is now {new!r} (the method's privacy model "
                        "was once called the budget; docs/glossary.md); rename it there.")
    return None
