import os

import pytest
import torch

# Tests measure behaviour, not speed; two threads match the CI machine and keep runs repeatable.
torch.set_num_threads(int(os.environ.get("CA2SIS_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
