#
# Copyright 2008,2009 Free Software Foundation, Inc.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#

# The presence of this file turns this directory into a Python package

'''
This is the GNU Radio LARGESC module. Place your Python package
description here (python/__init__.py).
'''
import os

# import pybind11 generated symbols into the largesc namespace
try:
    # this might fail if the module is python-only
    from .largesc_python import *
except ModuleNotFoundError:
    pass

# import any pure python here
#

from . import uep_plan
from .adaptive_controller import adaptive_controller

# Mimi codec blocks (Python, need torch + moshi). Wrapped so that a torch or
# moshi import problem leaves the C++ blocks importable; the reason is kept in
# MIMI_IMPORT_ERROR.
MIMI_IMPORT_ERROR = None
try:
    from .mimi_encoder import mimi_encoder
    from .mimi_decoder import mimi_decoder
    from .largesc_tx import largesc_tx
    from .largesc_rx import largesc_rx
except ImportError as _e:  # pragma: no cover
    MIMI_IMPORT_ERROR = _e
