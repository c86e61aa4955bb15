#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""GRC without a display: every block file in grc/ loads in GRC's platform,
sits in one of the [LargeSC] subcategories, is documented, imports only
`from gnuradio import largesc`, and its make template names a real block;
every block placed with its defaults (as from the block library)
validates with no error apart from unconnected ports; no dropdown shows a
quoted value; every example flowgraph (examples/*.grc, examples/*/*.grc) loads with no
error at all and uses no Embedded Python block."""

import glob
import os

import yaml
from gnuradio import gr_unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GRC_DIR = os.path.join(ROOT, "grc")

# the GRC block tree: [LargeSC] with one subcategory per concern (docs/architecture.md)
CATEGORIES = {"[LargeSC]/" + c for c in ("Codec", "UEP", "Channel", "Recovery", "PHY", "Monitor", "Link")}
EXAMPLES = os.path.join(ROOT, "examples")


def example_files():
    """examples/*.grc and the flowgraphs of the example folders (examples/two_radio/)."""
    return sorted(glob.glob(os.path.join(EXAMPLES, "*.grc")) + glob.glob(os.path.join(EXAMPLES, "*", "*.grc")))


def platform():
    from gnuradio import gr
    from gnuradio.grc.core.platform import Platform
    p = Platform(version=gr.version(), version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()),
                 prefs=gr.prefs())
    p.build_library(path=[os.path.join(gr.prefix(), "share", "gnuradio", "grc", "blocks"), GRC_DIR])
    return p


def errors_of(fg):
    fg.rewrite()
    fg.validate()
    return [(str(elem), msg) for elem, msg in fg.iter_error_messages()]


class qa_grc(gr_unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.platform = platform()
        cls.files = sorted(glob.glob(os.path.join(GRC_DIR, "largesc_*.block.yml")))

    def test_block_files(self):
        self.assertGreater(len(self.files), 0)
        for f in self.files:
            with self.subTest(file=os.path.basename(f)):
                with open(f) as fh:
                    d = yaml.safe_load(fh)
                self.assertTrue(d["id"] in self.platform.blocks, "GRC did not load the block")
                self.assertIn(d["category"], CATEGORIES)
                self.assertEqual(d["templates"]["imports"].strip(), "from gnuradio import largesc")
                self.assertGreater(len(d.get("documentation", "")), 200)
                make = d["templates"]["make"]
                name = make.split("(")[0]
                ns = {}
                exec(d["templates"]["imports"], ns)  # noqa: S102 - the module's own import line
                obj = ns
                for part in name.split("."):
                    obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
                self.assertTrue(callable(obj), f"{name} is not a block")
                # dropdowns: every option has a label, and no label is a quoted value
                for p in d["parameters"]:
                    if "options" in p:
                        labels = p.get("option_labels")
                        self.assertTrue(labels, f"{p['id']}: options without option_labels")
                        self.assertEqual(len(labels), len(p["options"]), p["id"])
                        for lab in labels:
                            self.assertFalse(str(lab).startswith(("'", '"')), f"{p['id']}: quoted label {lab}")
                        # GRC draws the label; a plain value list must not be split by yaml
                        self.assertTrue(all(isinstance(v, str) for v in p["options"]), p["id"])
                    if p.get("dtype") == "enum":
                        self.assertIn(p["default"], p["options"], p["id"])

    def test_blocks_with_defaults_validate(self):
        """Each block as placed from the library (all defaults, a samp_rate
        variable present) has no error except its unconnected ports."""
        for f in self.files:
            with open(f) as fh:
                block_id = yaml.safe_load(fh)["id"]
            with self.subTest(block=block_id):
                fg = self.platform.make_flow_graph()
                fg.options_block.params["id"].set_value("qa_defaults")
                v = fg.new_block("variable")
                v.params["id"].set_value("samp_rate")
                v.params["value"].set_value("32000")  # a new GRC flowgraph's samp_rate
                fg.new_block(block_id).params["id"].set_value("blk0")
                errs = [e for e in errors_of(fg) if "not connected" not in e[1]]
                self.assertEqual(errs, [])

    def test_sound_card_prime_shows_with_fixed_rate_output(self):
        """"Sound card prime" is shown in the properties exactly when the block's fixed-rate
        output is on (a hide expression that compares a bool to a string hides it for good)."""
        for block_id, flag, default in (("largesc_largesc_rx", "fixed_rate_output", "True"),
                                        ("largesc_mimi_decoder", "fixed_rate", "False")):
            fg = self.platform.make_flow_graph()
            b = fg.new_block(block_id)
            self.assertEqual(b.params[flag].get_value(), default)
            for value, hide in (("True", "none"), ("False", "all")):
                b.params[flag].set_value(value)
                b.rewrite()
                self.assertEqual(b.params["output_prime_ms"].hide, hide, (block_id, value))

    def test_examples_load_without_error(self):
        grcs = example_files()
        self.assertGreaterEqual(len(grcs), 9)
        self.assertIn(os.path.join(EXAMPLES, "two_radio", "node.grc"), grcs)
        for path in grcs:
            with self.subTest(example=os.path.basename(path)):
                fg = self.platform.make_flow_graph(path)
                fg.grc_file_path = path
                names = [b.key for b in fg.blocks]
                self.assertNotIn("_dummy", names, "a block of the example is missing from the library")
                self.assertFalse({"epy_block", "epy_module"} & set(names), "Embedded Python in an example")
                self.assertEqual(errors_of(fg), [])

    def test_examples_write_outside_source_tree(self):
        """Output files of the examples default to a folder outside the
        source tree (a parameter the user can change)."""
        for path in example_files():
            with open(path) as fh:
                g = yaml.safe_load(fh)
            for b in g["blocks"]:
                if b["id"] in ("blocks_wavfile_sink", "blocks_file_sink"):
                    with self.subTest(example=os.path.basename(path), block=b["name"]):
                        self.assertNotRegex(b["parameters"]["file"], r"^'[^/~]", "relative output path")
                if b["id"] == "parameter" and b["name"] in ("output_file", "out_dir"):
                    with self.subTest(example=os.path.basename(path), param=b["name"]):
                        v = b["parameters"]["value"]
                        self.assertTrue("/tmp" in v or "expanduser" in v or "gettempdir" in v, v)


if __name__ == "__main__":
    gr_unittest.run(qa_grc)
