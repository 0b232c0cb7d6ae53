"""The parts of training that the loop in :mod:`ca2sis_lib.train` calls by name.

    config.py   TrainConfig, the presets, YAML / ``--set`` values, the keys a resume must keep
    data.py     the training dataset and the batch sampler that makes every step reproducible
    stage.py    one generator forward per stage: reconstruction, or styles from noise (mapping)
    run.py      a run set up once: devices, models, optimisers, EMA, resume, logging, checkpoints
    steps.py    one step in named parts: generator update, EMA update, discriminator update
"""
