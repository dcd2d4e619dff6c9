"""``anonpriv anonymize``: write anonymized copies of whole video files with a trained or training-free method.

One job per module:

* :mod:`~anonpriv.anonymize.cli`: the command (arguments, loading the method, the run loop, threads
  and device, the face-audit warning); the user-facing description lives there;
* :mod:`~anonpriv.anonymize.windows`: how frames are cut into clips of the method's length, and batch sizes;
* :mod:`~anonpriv.anonymize.engine`: :class:`SlidingClipAnonymizer`, the method over frame streams of any size;
* :mod:`~anonpriv.anonymize.streams`: the decoding and encoding threads and their queues;
* :mod:`~anonpriv.anonymize.jobs`: which inputs go to which output files, refused collisions;
* :mod:`~anonpriv.anonymize.writer`: writing one video and its mask file, the encoder check;
* :mod:`~anonpriv.anonymize.progress`: the progress bar;
* :mod:`~anonpriv.anonymize.records`, :mod:`~anonpriv.anonymize.shards`,
  :mod:`~anonpriv.anonymize.footage`: resume records, ``--shard``, footage strengths;
* :mod:`~anonpriv.anonymize.errors`: the errors whose messages the command prints.

Importing the package imports no torch: the names from the modules the command needs to parse its
arguments are imported here; the others (and with them torch) on first use (PEP 562).
"""

from __future__ import annotations

from anonpriv.anonymize.cli import load_anonymizer, main
from anonpriv.anonymize.errors import AnonymizeError
from anonpriv.anonymize.jobs import Job, plan_jobs
from anonpriv.lazy_exports import lazy_exports

# Public name -> the submodule that defines it, for the names that import torch.
_EXPORTS = {
    "FolderProgress": "progress",
    "SlidingClipAnonymizer": "engine",
    "WriteOptions": "writer",
    "anonymize_video": "writer",
}

__all__ = ["AnonymizeError", "FolderProgress", "Job", "SlidingClipAnonymizer", "WriteOptions", "anonymize_video",
           "load_anonymizer", "main", "plan_jobs"]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
