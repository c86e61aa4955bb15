#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""A packet modem built from GNU Radio's own blocks (modem): packet_modem_tx,
packet_modem_rx, the test packet_source, USRP helpers and the baseband
link simulation used by largesc-phy-sweep."""
