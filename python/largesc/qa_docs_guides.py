#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the documentation, second half: the commands of the documents
named in qa_docs.GUIDES run as written (qa_docs.py has the rules and runs
every other document; two ctest entries so that ctest -j2 runs them side by
side)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import qa_docs  # noqa: E402


class qa_docs_guides(qa_docs.doc_tests(qa_docs.GUIDES), unittest.TestCase):
    pass


if __name__ == "__main__":
    unittest.main()
