#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Token recovery: the scheduler-free core (core), model configs (config), the
hold backend (hold), the LM stepping (lm), LoRA adapters and checkpoints
(lora), the token_recovery block and the largesc-finetune tool (finetune)."""
