"""Models: CA²-SIS (cross-attention) and, for comparison, the SPADE family."""

from .ca2sis import CA2SIS, CA2SISOutput
from .config import CA2SISConfig, StageConfig
from .discriminator import MultiscaleDiscriminator
from .generator_base import count_parameters
from .sean import SEANConfig, SEANGenerator, SEANNorm
from .spade import (
    SPADE,
    ModulationMaps,
    SPADEConfig,
    SPADEGenerator,
    SPADEOutput,
    SPADEResBlock,
    modulation_maps,
    record_modulation,
)

__all__ = [
    "CA2SIS",
    "CA2SISConfig",
    "CA2SISOutput",
    "MultiscaleDiscriminator",
    "StageConfig",
    "SPADE",
    "SPADEConfig",
    "SPADEGenerator",
    "SPADEOutput",
    "SPADEResBlock",
    "ModulationMaps",
    "modulation_maps",
    "record_modulation",
    "SEANConfig",
    "SEANGenerator",
    "SEANNorm",
    "count_parameters",
]
