"""The parts of training that the loop in :mod:`ca2sis_lib.train` calls by name.

    config.py     TrainConfig, the presets, YAML / ``--set`` values
    settings.py   the valid range of every setting, checked when a TrainConfig is built
    data.py       the training dataset, checked before the first step, and the batch sampler that
                  makes every step reproducible
    stage.py      one generator forward per stage: reconstruction, or styles from noise (mapping)
    run.py        a run set up once: devices, models, optimisers, EMA, resume, checkpoints, the
                  mapping stage's reference codes
    processes.py  one process or many (torchrun, DDP): ranks, and losses averaged over them
    rng.py        each step's seed, and the random-number state saved in every checkpoint
    schedule.py   what changes with the step: the learning-rate factor, the EMA's decay
    run_log.py    what a run writes as it goes: log.csv and sample grids
    lock.py       one run per folder: the run folder's lock
    resume.py     which settings may change on resume, and the record of each part of a run
    steps.py      one step in named parts: generator update, EMA update, discriminator update
"""
