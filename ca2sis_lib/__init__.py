"""ca2sis_lib: semantic image synthesis with class-adaptive cross-attention, for teaching."""

__version__ = "0.1.0"
