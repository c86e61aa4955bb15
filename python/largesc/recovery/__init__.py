#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Token recovery: the scheduler-free core (core), model configs (config), the
hold backend (hold), the LM stepping (lm), LoRA adapters and checkpoints
(lora), the token_recovery block and the largesc-finetune tool (finetune).

The package's public names, for `from gnuradio.largesc import recovery as R`
(the block and the finetuning tool, which need GNU Radio or a training loop,
are imported from their modules)."""

from .config import (ADAPTER_FORMAT, ADAPTER_VERSION, BACKENDS, CARD, CHECKPOINT_FORMAT, DEFAULT_MAX_HOLD,
                     FEED_BACK, MAX_CODEBOOKS, MAX_HOLD_LIMIT, MOSHI_FILE, MOSHI_REPO, PRESETS, RecoveryError,
                     build_lm, check_lm_config, config_digest, count_parameters, lm_config, moshi_config)
from .core import (LOSS_PATTERNS, RecoveredFrame, TokenRecovery, check_frame, check_recovery, loss_pattern,
                   make_recovery)
from .hold import HoldState
from .lm import EagerLMRecovery, LMRecovery
from .lora import (add_lora, adapter_paths, apply_adapter, check_adapter, load_base, lora_state,
                   moshi_weights_file, parse_checkpoint, read_adapter, read_adapter_meta, save_adapter,
                   save_checkpoint)
