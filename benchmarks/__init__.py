"""Performance benchmarks (issue 7); ``python -m benchmarks.run_all`` or ``make benchmarks`` runs them all.

* :mod:`benchmarks.anonymize_throughput`: clips/s and frames/s of every method's anonymizer.
* :mod:`benchmarks.token_pruning_speedup`: the downstream ViT on the kept tubelets vs. all of them.
* :mod:`benchmarks.end_to_end_anonymize`: ``anonpriv anonymize`` on a video file, frames/s and memory.
* :mod:`benchmarks.data_loading`: decoded clips/s of the real-video source with 0, 1 and 2 workers.
* :mod:`benchmarks.startup_and_deface`: start-up of ``anonpriv`` and ``anonpriv anonymize`` against
  ``deface`` end to end, whole processes (issue 16).
"""
