#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""In-band unequal error protection: the planner (uep_plan, scheduler-free)
and the adaptive_controller block that applies it per token frame."""
