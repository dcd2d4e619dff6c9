"""``anonpriv sweep``: every method through anonymizer training and the honest protocol, then the tables.

A sweep is described by one YAML file (``configs/sweep/*.yaml``; the keys are documented in
:mod:`anonpriv.sweep.config`): the datasets, the methods, the seeds, the anonymizer training recipe,
the evaluation protocol, the Table 2 entries (cross-dataset transfer, or the within-dataset "novel"
split) and the launcher. The work is split in small modules, each with one job:

* :mod:`~anonpriv.sweep.config` reads and validates the file (one-line errors naming the key);
* :mod:`~anonpriv.sweep.plan` turns it into jobs (an anonymizer training, or an evaluation that may
  need one) and the tables they fill;
* :mod:`~anonpriv.sweep.execute` runs one job in-process through the ``anonpriv`` LightningCLI;
* :mod:`~anonpriv.sweep.launchers` runs the unfinished jobs in dependency order (``local``: in this
  process, ``jobs`` worker processes, or one run per GPU; ``slurm``, :mod:`~anonpriv.sweep.slurm`:
  one SLURM job per run through submitit, with :mod:`~anonpriv.sweep.cluster_jobs` for what the cluster
  knows of earlier submissions);
* :mod:`~anonpriv.sweep.devices` says how many GPUs a run takes and which there are;
  :mod:`~anonpriv.sweep.task` runs one job in a process of its own (a GPU slot, a SLURM job), its
  output in the run's ``logs/``;
* :mod:`~anonpriv.sweep.runner` resumes (finished jobs are kept), checks what would fail late, and
  hands the rest to the launcher;
* :mod:`~anonpriv.sweep.report` writes the tables from the finished runs;
* :mod:`~anonpriv.sweep.cli` is the command.

Nothing here imports torch or Lightning until a job runs: ``anonpriv sweep --help`` and ``--dry-run``
answer at once, ``--report-only`` needs matplotlib alone.
"""
