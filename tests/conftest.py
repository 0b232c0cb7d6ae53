import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
import torch

# Tests measure behaviour, not speed; two threads match the CI machine and keep runs repeatable.
torch.set_num_threads(int(os.environ.get("CA2SIS_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def perturbed_tiny_ca2sis():
    """A tiny CA²-SIS with every parameter nudged by 0.05·randn: the zero-initialised transformer
    outputs are no longer the identity, so attention maps and edits are not trivial."""
    from ca2sis_lib.models import CA2SIS, CA2SISConfig

    torch.manual_seed(0)
    model = CA2SIS(CA2SISConfig.tiny()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def load_script(relative_path: str) -> ModuleType:
    """Import one of the repository's scripts (not a package module) by its path from the root."""
    path = Path(__file__).resolve().parents[1] / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
