"""Arc 1: teacher pipeline -> LoRA SFT -> DPO."""
