"""The parts of training that the loop in :mod:`ca2sis_lib.train` calls by name.

    config.py     TrainConfig, the presets, YAML / ``--set`` values
    settings.py   the valid range of every setting, checked when a TrainConfig is built
    data.py       the training dataset, checked before the first step, and the batch sampler that
                  makes every step reproducible
    stage.py      one generator forward per stage: reconstruction, or styles from noise (mapping)
    run.py        a run set up once: devices, models, optimisers, EMA, resume, logging, checkpoints
    lock.py       one run per folder: the run folder's lock
    resume.py     which settings may change on resume, and the record of each part of a run
    steps.py      one step in named parts: generator update, EMA update, discriminator update
"""
