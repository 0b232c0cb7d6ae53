"""Models: CA²-SIS (cross-attention) and, for comparison, the SPADE family."""

from .ca2sis import CA2SIS, CA2SISOutput, attention_loss
from .config import CA2SISConfig, StageConfig

__all__ = ["CA2SIS", "CA2SISConfig", "CA2SISOutput", "StageConfig", "attention_loss"]
