#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Every GRC block file in grc/ loads in GRC's platform, sits in the [LargeSC]
category, is documented, and its make template names a real block in the
installed module."""

import glob
import os

import yaml
from gnuradio import gr_unittest

GRC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "grc")


class qa_grc(gr_unittest.TestCase):

    def test_block_files(self):
        from gnuradio.grc.core.platform import Platform
        from gnuradio import gr
        files = sorted(glob.glob(os.path.join(GRC_DIR, "largesc_*.block.yml")))
        self.assertGreater(len(files), 0)
        platform = Platform(version=gr.version(), version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()),
                            prefs=gr.prefs())
        platform.build_library(path=[os.path.join(gr.prefix(), "share", "gnuradio", "grc", "blocks"), GRC_DIR])
        for f in files:
            with self.subTest(file=os.path.basename(f)):
                with open(f) as fh:
                    d = yaml.safe_load(fh)
                self.assertIn(d["id"], platform.blocks, "GRC did not load the block")
                self.assertEqual(d["category"], "[LargeSC]")
                self.assertGreater(len(d.get("documentation", "")), 200)
                make = d["templates"]["make"]
                self.assertTrue(make.startswith("largesc."), make)
                name = make.split("(")[0].split(".", 1)[1]
                from gnuradio import largesc
                self.assertTrue(hasattr(largesc, name), f"largesc has no {name}")


if __name__ == "__main__":
    gr_unittest.run(qa_grc)
