#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Link simulation: one link as a flowgraph (link), campaigns of sweep points
(campaign), the largesc-sim command line (cli) and campaign reports (report)."""
