#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for corpus input (eval/corpus.py, largesc-sim --corpus / --transcripts /
--utterances): small corpora written here in the LibriSpeech layout (FLAC)
and the Common Voice layout (MP3), cut from the LibriVox demo clips; exact
selection (which utterances, seeded sampling, whole-utterance limits),
transcripts and WER reference labels reaching the rows, Whisper references
made once per utterance, error messages, progress in utterances (local jobs,
process pool, Dask), --device, and a corpus campaign end to end."""

import contextlib
import io
import json
import os
import tempfile

import numpy as np
import soundfile as sf
from gnuradio import gr_unittest

from gnuradio.largesc.sim import campaign as sim
from gnuradio.largesc.sim import cli as sim_cli
from gnuradio.largesc.eval import corpus as C
from gnuradio.largesc.eval import metrics as M
from gnuradio.largesc.eval import speech as S

SR = 16000

# LibriSpeech test corpus: UTTID -> (seconds, transcript)
LS = {
    "19-198-0000": (0.8, "NORTHANGER ABBEY"),
    "19-198-0001": (1.2, "THIS LITTLE WORK WAS FINISHED IN THE YEAR EIGHTEEN O THREE"),
    "19-198-0002": (2.4, "AND INTENDED FOR IMMEDIATE PUBLICATION"),
    "84-121-0000": (1.6, "IT WAS DISPOSED OF TO A BOOKSELLER"),
    "84-121-0001": (3.0, "IT WAS EVEN ADVERTISED"),
    "84-121-0002": (1.0, "AND WHY THE BUSINESS PROCEEDED NO FURTHER"),
}
# Common Voice test corpus: clip -> (seconds, sentence, split)
CV = {
    "common_voice_en_101": (1.0, "The boy looked out at the horizon.", "test"),
    "common_voice_en_102": (2.2, "Mr. Brown went to the market, didn't he?", "test"),
    "common_voice_en_103": (1.4, "She sells sea shells.", "test"),
    "common_voice_en_201": (1.1, "A dev sentence.", "dev"),
}
CV_HEADER = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes",
             "down_votes", "age", "gender", "accents", "variant", "locale", "segment"]


def speech_pieces(durations):
    """Consecutive pieces of the demo speech (all five clips joined) of the
    given lengths in seconds (16 kHz)."""
    x, _ = S.demo_speech(SR)
    out, pos = [], int(0.2 * SR)
    for d in durations:
        n = int(round(d * SR))
        out.append(x[pos:pos + n])
        pos += n
    return out


def write_librispeech(root, split="test-clean"):
    """LibriSpeech/SPLIT/SPEAKER/CHAPTER/UTTID.flac + SPEAKER-CHAPTER.trans.txt."""
    pieces = speech_pieces([d for d, _ in LS.values()])
    for (uid, (_, text)), x in zip(LS.items(), pieces):
        spk, ch, _ = uid.split("-")
        d = os.path.join(root, split, spk, ch)
        os.makedirs(d, exist_ok=True)
        sf.write(os.path.join(d, uid + ".flac"), x, SR, format="FLAC")
        with open(os.path.join(d, f"{spk}-{ch}.trans.txt"), "a") as f:
            f.write(f"{uid} {text}\n")
    return root


def write_commonvoice(root, durations_file=True):
    """clips/*.mp3 (32 kHz, as Common Voice ships them) + test.tsv, dev.tsv,
    validated.tsv (and clip_durations.tsv)."""
    os.makedirs(os.path.join(root, "clips"))
    pieces = speech_pieces([d for d, _, _ in CV.values()])
    tsv = {"test": [], "dev": []}
    for (name, (dur, text, split)), x in zip(CV.items(), pieces):
        sf.write(os.path.join(root, "clips", name + ".mp3"), S.resample(x, SR, 32000), 32000, format="MP3")
        tsv[split].append(["c0ffee", name + ".mp3", "s1", text, "", "2", "0", "", "", "", "", "en", ""])
    for split, rows in (("test", tsv["test"]), ("dev", tsv["dev"]), ("validated", tsv["test"] + tsv["dev"])):
        with open(os.path.join(root, split + ".tsv"), "w") as f:
            for r in [CV_HEADER] + rows:
                f.write("\t".join(r) + "\n")
    if durations_file:
        with open(os.path.join(root, "clip_durations.tsv"), "w") as f:
            f.write("clip\tduration[ms]\n")
            for name, (dur, _, _) in CV.items():
                f.write(f"{name}.mp3\t{int(dur * 1000)}\n")
    return root


def run_cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = sim_cli.main(list(args))
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def read_rows(d):
    with open(os.path.join(d, "rows.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


class qa_corpus(gr_unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ls = write_librispeech(os.path.join(cls.tmp.name, "LibriSpeech"))
        cls.cv = write_commonvoice(os.path.join(cls.tmp.name, "cv", "en"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    # ---- layouts

    def test_layouts_are_detected(self):
        self.assertEqual(C.detect_layout(self.ls), C.LIBRISPEECH)
        self.assertEqual(C.detect_layout(os.path.join(self.ls, "test-clean", "19")), C.LIBRISPEECH)
        self.assertEqual(C.detect_layout(self.cv), C.COMMONVOICE)
        with tempfile.TemporaryDirectory() as d:
            open(os.path.join(d, "notes.txt"), "w").close()
            with self.assertRaises(C.CorpusError) as cm:
                C.detect_layout(d)
            for words in ("LibriSpeech", "SPEAKER-CHAPTER.trans.txt", "Common Voice", "clips/*.mp3",
                          "'path' and 'sentence'", "notes.txt"):
                self.assertIn(words, str(cm.exception))
            with self.assertRaisesRegex(C.CorpusError, "no such folder"):
                C.detect_layout(os.path.join(d, "nothing"))

    def test_librispeech(self):
        layout, read, utts = C.read_corpus(self.ls)
        self.assertEqual((layout, read), (C.LIBRISPEECH, self.ls))
        self.assertEqual([u.name for u in utts], sorted(LS))
        for u in utts:
            self.assertEqual(u.text, LS[u.name][1])
            self.assertEqual(u.reference, "corpus")
            self.assertTrue(u.path.endswith(os.path.join("test-clean", *u.name.split("-")[:2], u.name + ".flac")))
            self.assertAlmostEqual(u.duration_s(), LS[u.name][0], places=6)
        self.assertEqual(len(C.read_corpus(self.ls, "test-clean")[2]), 6)
        with self.assertRaisesRegex(C.CorpusError, "--corpus-split test-other: no folder .*folders there: test-clean"):
            C.read_corpus(self.ls, "test-other")

    def test_librispeech_errors(self):
        with tempfile.TemporaryDirectory() as d:
            root = write_librispeech(os.path.join(d, "ls"))
            trans = os.path.join(root, "test-clean", "84", "121", "84-121.trans.txt")
            with open(trans, "a") as f:
                f.write("84-121-0009 A LINE WITH NO AUDIO\n")
            with self.assertRaisesRegex(C.CorpusError, r"84-121.trans.txt line 4: utterance 84-121-0009 has no "
                                        r"audio file \(.*84-121-0009.flac is missing\)"):
                C.read_corpus(root)
            with open(trans, "w") as f:
                f.write("84-121-0000 IT WAS\n84-121-0001\n")
            with self.assertRaisesRegex(C.CorpusError, "line 2: expected 'UTTID TEXT'"):
                C.read_corpus(root)
            with open(trans, "w") as f:
                f.write("../../x IT WAS\n")
            with self.assertRaisesRegex(C.CorpusError, r"line 1: '../../x' is not an utterance id"):
                C.read_corpus(root)

    def test_commonvoice(self):
        layout, read, utts = C.read_corpus(self.cv)
        self.assertEqual((layout, read), (C.COMMONVOICE, os.path.join(self.cv, "test.tsv")))
        self.assertEqual([u.name for u in utts], [n for n, v in CV.items() if v[2] == "test"])
        for u in utts:
            self.assertEqual(u.text, CV[u.name][1])
            self.assertEqual(u.path, os.path.join(self.cv, "clips", u.name + ".mp3"))
            self.assertEqual(u.duration_s(), CV[u.name][0])   # from clip_durations.tsv
        self.assertEqual([u.name for u in C.read_corpus(self.cv, "dev")[2]], ["common_voice_en_201"])
        self.assertEqual(len(C.read_corpus(self.cv, "validated.tsv")[2]), 4)
        with self.assertRaisesRegex(C.CorpusError, "--corpus-split other: no .*other.tsv; splits there: "
                                    "clip_durations, dev, test, validated"):
            C.read_corpus(self.cv, "other")

    def test_commonvoice_errors(self):
        with tempfile.TemporaryDirectory() as d:
            root = write_commonvoice(os.path.join(d, "cv"), durations_file=False)
            test = os.path.join(root, "test.tsv")
            # durations from the MP3 files themselves
            u = C.read_corpus(root)[2][0]
            self.assertAlmostEqual(u.duration_s(), 1.0, places=3)
            with open(test) as f:
                good = f.read()
            for text, msg in (
                    (good.replace("\tsentence\t", "\ttext\t"), "no column 'sentence' in the header line"),
                    (good + "x\tcommon_voice_en_9.mp3\n", r"test.tsv line 5: 2 tab-separated fields, the header has 13"),
                    (good.replace("common_voice_en_103.mp3", "common_voice_en_999.mp3"),
                     r"test.tsv line 4: clip .*clips/common_voice_en_999.mp3 is missing"),
                    (good.replace("She sells sea shells.", " "), "line 4: clip common_voice_en_103.mp3 has an empty 'sentence'"),
                    (good.replace("common_voice_en_103.mp3", "common_voice_en_101.mp3"),
                     "line 4: clip common_voice_en_101.mp3 is listed twice")):
                with self.subTest(msg=msg):
                    with open(test, "w") as f:
                        f.write(text)
                    with self.assertRaisesRegex(C.CorpusError, msg):
                        C.read_corpus(root)
            with open(test, "w") as f:
                f.write(good)
            # no test/dev/validated/train: the only .tsv with path and sentence, else ask for a split
            for f in ("test.tsv", "dev.tsv", "validated.tsv"):
                os.rename(os.path.join(root, f), os.path.join(root, "x" + f))
            with self.assertRaisesRegex(C.CorpusError, "several splits .*xdev, xtest, xvalidated.* "
                                        "name one with --corpus-split"):
                C.read_corpus(root)
            for f in ("xdev.tsv", "xvalidated.tsv"):
                os.remove(os.path.join(root, f))
            self.assertEqual(C.read_corpus(root)[1], os.path.join(root, "xtest.tsv"))

    def test_speech_load_reads_flac_and_mp3(self):
        for path, n in ((os.path.join(self.ls, "test-clean", "19", "198", "19-198-0001.flac"), 19200),
                        (os.path.join(self.cv, "clips", "common_voice_en_103.mp3"), 22400)):
            with self.subTest(path=os.path.basename(path)):
                x = S.load(path, SR)
                self.assertEqual(x.dtype, np.float32)
                self.assertEqual(len(x), n)
        ref = speech_pieces([d for d, _ in LS.values()])[1]
        np.testing.assert_allclose(S.load(os.path.join(self.ls, "test-clean", "19", "198", "19-198-0001.flac")),
                                   ref, atol=1.0 / 32768)

    # ---- selection

    def test_selection_whole_utterances(self):
        utts = C.read_corpus(self.ls)[2]
        names = lambda sel: [u.name for u in sel.utterances]
        # every utterance, by name
        self.assertEqual(names(C.select(utts)), sorted(LS))
        # a per-utterance limit leaves the longer ones out, never cuts them
        sel = C.select(utts, max_seconds=1.6)
        self.assertEqual(names(sel), ["19-198-0000", "19-198-0001", "84-121-0000", "84-121-0002"])
        self.assertEqual((sel.passed_over, sel.pool), (2, 6))
        self.assertAlmostEqual(sel.total_s, 4.6, places=6)
        self.assertEqual(sel.describe(), "4 of 6 utterances, 4.6 s in all; 2 longer than --max-seconds passed over")
        for u in sel.utterances:
            self.assertEqual(u.path, dict((v.name, v.path) for v in utts)[u.name])
        # seeded sampling: the same seed the same utterances, another seed others
        a = names(C.select(utts, count=3, seed=1))
        self.assertEqual(a, ["19-198-0002", "84-121-0000", "84-121-0002"])
        self.assertEqual(names(C.select(utts, count=3, seed=1)), a)
        self.assertEqual(names(C.select(utts, count=3, seed=2)), ["19-198-0001", "19-198-0002", "84-121-0000"])
        # sampling among the ones that fit
        self.assertEqual(names(C.select(utts, count=3, max_seconds=1.6, seed=1)),
                         ["19-198-0000", "84-121-0000", "84-121-0002"])
        # a total: in the seeded order until the next would go over
        sel = C.select(utts, total_seconds=4.5, seed=1)
        self.assertEqual(names(sel), ["19-198-0002", "84-121-0000"])
        self.assertAlmostEqual(sel.total_s, 4.0, places=6)
        # more than there are: all that fit
        self.assertEqual(len(C.select(utts, count=50, max_seconds=1.6).utterances), 4)
        with self.assertRaisesRegex(C.CorpusError, "--utterances must be >= 1"):
            C.select(utts, count=0)

    def test_choose_by_source(self):
        utts = C.read_corpus(self.ls)[2]
        with tempfile.TemporaryDirectory() as d:
            # a corpus never cuts: nothing short enough is an error saying the shortest
            with self.assertRaisesRegex(C.CorpusError, r"no utterance is 0.5 s or shorter \(the shortest of 6 "
                                        r"is 0.80 s\); utterances are used whole .* raise --max-seconds"):
                C.choose(utts, max_seconds=0.5, cut="never", out_dir=d)
            with self.assertRaisesRegex(C.CorpusError, "no utterance fits --total-seconds 0.5"):
                C.choose(utts, total_seconds=0.5, cut="never", out_dir=d)
            # the demo's fallback: when nothing fits, the first ones cut, transcript dropped
            sel = C.choose(utts, 2, max_seconds=0.5, sample=False, cut="fallback", out_dir=d)
            self.assertTrue(sel.cut)
            self.assertEqual([(u.name, u.text, u.reference) for u in sel.utterances],
                             [("19-198-0000", None, "whisper-clean-input"),
                              ("19-198-0001", None, "whisper-clean-input")])
            for u in sel.utterances:
                self.assertEqual(u.path, os.path.join(d, "clips", u.name + ".wav"))
                self.assertEqual(sf.info(u.path).frames, 8000)
            # ... but whole clips whenever one fits
            sel = C.choose(utts, 2, max_seconds=1.0, sample=False, cut="fallback", out_dir=d)
            self.assertFalse(sel.cut)
            self.assertEqual([(u.name, u.reference) for u in sel.utterances],
                             [("19-198-0000", "corpus"), ("84-121-0002", "corpus")])
            # files without transcripts: nothing to invalidate, longer ones are cut
            files = C.file_utterances([u.path for u in utts[:3]])
            sel = C.choose(files, max_seconds=1.0, cut="longer", out_dir=d)
            self.assertEqual([(u.name, round(u.duration_s(), 3)) for u in sel.utterances],
                             [("19-198-0000", 0.8), ("19-198-0001", 1.0), ("19-198-0002", 1.0)])
            self.assertEqual(sel.utterances[0].path, utts[0].path)
            self.assertEqual(sel.utterances[2].path, os.path.join(d, "clips", "19-198-0002.wav"))

    def test_demo_selection(self):
        """The demo keeps working: --clips 2 --max-seconds 6 takes the first two
        clips that fit whole (0870 is 7.1 s); the docs test's --clips 1
        --max-seconds 1.5 fits none, so the first clip is cut and labelled."""
        with tempfile.TemporaryDirectory() as d:
            args = sim_cli.argparse.Namespace(corpus=None, demo=True, inputs=[], transcripts=None, utterances=None,
                                              clips=2, max_seconds=6.0, total_seconds=0.0, seed=1, out=d,
                                              corpus_split="")
            sel, source = sim_cli.select_utterances(args, C)
            self.assertEqual(source, "demo clips")
            self.assertEqual([(u.name[-4:], u.reference) for u in sel.utterances], [("0880", "corpus"), ("0890", "corpus")])
            self.assertEqual(sel.utterances[0].text, "he was not an ill disposed young man")
            args.clips, args.max_seconds = 1, 1.5
            sel, _ = sim_cli.select_utterances(args, C)
            self.assertTrue(sel.cut)
            self.assertEqual([(u.name[-4:], u.text, u.reference) for u in sel.utterances],
                             [("0870", None, "whisper-clean-input")])
            self.assertEqual(sf.info(sel.utterances[0].path).frames, 24000)

    # ---- your own files

    def test_transcripts_file(self):
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "a"))
            xs = speech_pieces([1.0, 1.0, 1.0])
            paths = [os.path.join(d, "a", "one.wav"), os.path.join(d, "a", "two.flac"), os.path.join(d, "three.wav")]
            for p, x in zip(paths, xs):
                sf.write(p, x, SR)
            tsv = os.path.join(d, "texts.tsv")
            with open(tsv, "w") as f:
                f.write("path\ttext\n# my recordings\n\na/one.wav\tFirst  one.\ntwo.flac\tsecond\n"
                        f"{paths[2]}\tthe third\nunused.wav\tnot among the inputs\n")
            utts = C.file_utterances(paths, tsv)
            self.assertEqual([(u.name, u.text, u.reference) for u in utts],
                             [("one", "First one.", "transcripts-file"), ("two", "second", "transcripts-file"),
                              ("three", "the third", "transcripts-file")])
            self.assertEqual([u.reference for u in C.file_utterances(paths)], ["whisper-clean-input"] * 3)
            with open(tsv, "w") as f:
                f.write("one.wav\tfirst\n")
            with self.assertRaisesRegex(C.CorpusError, r"no line for 2 input file\(s\): .*two.flac, .*three.wav "
                                        r"\(a line is 'PATH<TAB>TEXT'.*leave --transcripts out"):
                C.file_utterances(paths, tsv)
            for text, msg in (("one.wav first\n", "line 1: expected 'PATH<TAB>TEXT'"),
                              ("one.wav\t \n", "line 1: one.wav has an empty transcript"),
                              ("one.wav\ta\none.wav\tb\n", "line 2: one.wav is listed twice"),
                              ("# nothing\n", "no 'PATH<TAB>TEXT' line")):
                with self.subTest(msg=msg):
                    with open(tsv, "w") as f:
                        f.write(text)
                    with self.assertRaisesRegex(C.CorpusError, msg):
                        C.file_utterances(paths, tsv)
            with self.assertRaisesRegex(C.CorpusError, "--transcripts .*nope.tsv: no such file"):
                C.file_utterances(paths, os.path.join(d, "nope.tsv"))
            with self.assertRaisesRegex(C.CorpusError, "two input files are named 'one'"):
                C.file_utterances([paths[0], paths[0]])
            with self.assertRaisesRegex(C.CorpusError, "missing.wav: no such file"):
                C.file_utterances([os.path.join(d, "missing.wav")])

    def test_cli_rejects_bad_corpus_input_before_work(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "o")
            empty = os.path.join(d, "empty")
            os.makedirs(empty)
            wav = os.path.join(d, "x.wav")
            sf.write(wav, speech_pieces([1.0])[0], SR)
            cases = [
                (["--corpus", empty], "not a corpus layout largesc-sim reads; expected LibriSpeech .* or Common Voice"),
                (["--corpus", os.path.join(d, "none")], "no such folder"),
                (["--corpus", self.ls, "--demo"], "give one source of speech: --demo or --corpus"),
                (["--demo", "--transcripts", wav], "--transcripts is for your own speech files"),
                (["--demo", "--corpus-split", "test"], "--corpus-split is for --corpus"),
                (["--corpus", self.ls, "--utterances", "0"], "--utterances must be >= 1"),
                (["--corpus", self.ls, "--total-seconds", "-1"], "--total-seconds must be"),
                (["--corpus", self.ls, "--max-seconds", "0.5"], "no utterance is 0.5 s or shorter"),
                (["--corpus", self.cv, "--corpus-split", "train"], "--corpus-split train: no"),
                ([wav, "--transcripts", os.path.join(d, "t.tsv")], "t.tsv: no such file"),
                (["--demo", "--device", "tpu"], "--device 'tpu': use auto, cpu, cuda or cuda:N"),
            ]
            import torch
            if not torch.cuda.is_available():
                cases.append((["--demo", "--device", "cuda"], "--device cuda: torch sees no CUDA GPU on this machine"))
            for args, msg in cases:
                with self.subTest(args=args):
                    rc, _, err = run_cli(*args, "--out", out, "--baselines", "none", "--metrics", "stoi")
                    self.assertEqual(rc, 2)
                    self.assertRegex(err, msg)
                    self.assertNotIn("Traceback", err)
            self.assertFalse(os.path.exists(os.path.join(out, "rows.jsonl")))

    # ---- rows, references, fingerprint

    def test_transcripts_and_references_reach_the_rows(self):
        """Corpus transcripts (Common Voice, MP3), a transcripts file and
        Whisper's transcript of the clean input, each labelled in every row;
        the Whisper reference is made once per utterance, kept for a resumed
        campaign, and not from the degraded audio."""
        utts = C.read_corpus(self.cv)[2][:1]
        with tempfile.TemporaryDirectory() as d:
            own = os.path.join(d, "own.wav")
            sf.write(own, S.load(S.demo_clips()[1].path, SR), SR)    # 3 s: "he was not an ill disposed young man"
            tsv = os.path.join(d, "t.tsv")
            with open(tsv, "w") as f:
                f.write("own.wav\tHe was not an ill-disposed young man.\n")
            calls = []
            orig = M.transcribe
            M.transcribe = lambda x, sr: (calls.append(len(x)), orig(x, sr))[1]
            try:
                for label, clips in (("corpus", [u.clip() for u in utts]),
                                     ("transcripts-file", [u.clip() for u in C.file_utterances([own], tsv)]),
                                     ("whisper-clean-input", [u.clip() for u in C.file_utterances([own])])):
                    with self.subTest(label=label):
                        out = os.path.join(d, label)
                        opts = sim.Options(metrics=("wer",), out_dir=out, save_audio=False)
                        pts = sim.make_grid(["codec2_3200"], [], [0.0, 0.1], [1.0], [], 1, {"codec2_3200": 3200})
                        del calls[:]
                        rows = sim.run_campaign(pts, clips, opts, jobs=1, progress=False, log=lambda s: None)
                        self.assertEqual(len(rows), 2)
                        for r in rows:
                            self.assertEqual(r["wer_reference"], label)
                            self.assertIsNotNone(r["m_wer"])
                        if label == "corpus":
                            self.assertEqual(rows[0]["reference_text"], "The boy looked out at the horizon.")
                            self.assertEqual(len(calls), 2)           # the two outputs only
                        elif label == "transcripts-file":
                            self.assertEqual(rows[0]["reference_text"], "He was not an ill-disposed young man.")
                            self.assertEqual(len(calls), 2)
                        else:
                            # one reference (the whole clean input) + the two outputs
                            self.assertEqual(len(calls), 3)
                            self.assertEqual(calls[0], 3 * SR - 160)  # the 2.99 s clip, all of it
                            ref = orig(S.load(own, SR), SR)
                            self.assertEqual(rows[0]["reference_text"], ref)
                            # Whisper tiny's own reading, not the true words ("... ill disposed ...")
                            self.assertTrue(M.normalize_text(ref).startswith("he was not an "), ref)
                            with open(os.path.join(out, sim.WER_REFERENCES)) as f:
                                self.assertEqual(list(json.load(f).values()), [ref])
                            # resumed with one more point: the kept reference, one new output
                            del calls[:]
                            more = pts + sim.make_grid(["codec2_3200"], [], [0.2], [1.0], [], 2, {"codec2_3200": 3200})
                            rows = sim.run_campaign(more, clips, opts, jobs=1, progress=False, log=lambda s: None)
                            self.assertEqual(len(rows), 3)
                            self.assertEqual(len(calls), 1)
                            self.assertEqual(rows[2]["reference_text"], ref)
            finally:
                M.transcribe = orig
            # rows without WER carry no reference label
            opts = sim.Options(metrics=("stoi",), out_dir=os.path.join(d, "stoi"), save_audio=False)
            rows = sim.run_campaign(sim.make_grid(["codec2_3200"], [], [0.0], [1.0], [], 1, {"codec2_3200": 3200}),
                                    [u.clip() for u in utts], opts, jobs=1, progress=False, log=lambda s: None)
            self.assertNotIn("wer_reference", rows[0])
        self.assertEqual(
            sim_cli.wer_reference_note(sim_cli.wer_reference_counts(
                [dict(name="a", text="x", wer_reference="corpus"), dict(name="b", text=None)], ["stoi", "wer"])),
            "WER reference: the corpus transcript (corpus) for 1 utterance(s); Whisper tiny.en's transcript "
            "of the clean input (whisper-clean-input) for 1 utterance(s) (row field wer_reference). Against "
            "Whisper's own reading of the clean speech, WER measures what the link changes, not the "
            "recogniser's absolute accuracy.")
        self.assertEqual(sim_cli.wer_reference_note(sim_cli.wer_reference_counts([dict(name="a", text="x")],
                                                                                 ["stoi"])), "")

    def test_fingerprint_with_corpora(self):
        utts = C.read_corpus(self.ls)[2][:2]
        opts = sim.Options(metrics=("stoi",), out_dir="o")
        fp = sim.campaign_fingerprint([u.clip() for u in utts], opts)
        self.assertEqual([c[0] for c in fp["clips"]], ["19-198-0000", "19-198-0001"])
        self.assertEqual([c[2:] for c in fp["clips"]], [[LS["19-198-0000"][1], "corpus"],
                                                        [LS["19-198-0001"][1], "corpus"]])
        self.assertEqual(fp["clips"][0][1], sim.file_digest(utts[0].path))
        self.assertEqual(fp["options"]["device"], "cpu")
        # another transcript, another label or another file: another campaign
        other = [dict(utts[0].clip(), text="OTHER WORDS"), utts[1].clip()]
        self.assertNotEqual(sim.campaign_fingerprint(other, opts)["clips"], fp["clips"])
        relabel = [dict(u.clip(), wer_reference="transcripts-file") for u in utts]
        self.assertNotEqual(sim.campaign_fingerprint(relabel, opts)["clips"], fp["clips"])
        # a Whisper reference is not in it (made from the audio, whose digest is)
        w = dict(name="w", path=utts[0].path, text=None)
        filled = dict(w, text="filled in", wer_reference="whisper-clean-input")
        self.assertEqual(sim.campaign_fingerprint([w], opts)["clips"],
                         sim.campaign_fingerprint([filled], opts)["clips"])
        with tempfile.TemporaryDirectory() as d:
            opts = sim.Options(metrics=("stoi",), out_dir=d, save_audio=False)
            pts = sim.make_grid(["codec2_1200"], [], [0.1], [1.0], [], 1, {"codec2_1200": 1200})
            sim.run_campaign(pts, [u.clip() for u in utts], opts, jobs=1, progress=False, log=lambda s: None)
            with self.assertRaisesRegex(sim.CampaignMismatch, "differs in: clips"):
                sim.run_campaign(pts, other, opts, jobs=1, progress=False, log=lambda s: None)
            with self.assertRaisesRegex(sim.CampaignMismatch, "differs in: device"):
                sim.run_campaign(pts, [u.clip() for u in utts], sim.Options(metrics=("stoi",), out_dir=d,
                                                                            save_audio=False, device="cuda"),
                                 jobs=1, progress=False, log=lambda s: None)

    # ---- progress

    def test_progress_counts_utterances(self):
        utts = [u.clip() for u in C.read_corpus(self.ls)[2][:3]]
        pts = sim.make_grid(["codec2_1200"], [], [0.0, 0.2], [1.0], [], 1, {"codec2_1200": 1200})
        for jobs in (1, 2):
            with self.subTest(jobs=jobs), tempfile.TemporaryDirectory() as d:
                out, seen = io.StringIO(), []
                sim.run_campaign(pts, utts, sim.Options(metrics=("stoi",), out_dir=d, save_audio=False),
                                 jobs=jobs, progress=out, log=lambda s: None, on_utterance=seen.append)
                self.assertEqual(sorted(seen), sorted([p.key() for p in pts] * 3))
                text = out.getvalue()
                self.assertIn("utterances (points x utterances): 6/6 100%", text)
                self.assertIn("left, points 2/2", text)

    def test_corpus_campaign_on_dask(self):
        """The same command on a Dask cluster (a LocalCluster here): the
        workers read the corpus by its path, progress counts their utterances
        as they finish, and the rows are the local run's."""
        from dask.distributed import LocalCluster
        with tempfile.TemporaryDirectory() as d, \
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            args = ["--corpus", self.cv, "--utterances", "2", "--metrics", "stoi", "--loss", "0.2",
                    "--budget", "1100", "--baselines", "codec2_700c", "--weights", "random:1", "--device", "cpu"]
            rc, _out, err = run_cli(*args, "--scheduler", cluster.scheduler_address, "--out", os.path.join(d, "dask"))
            self.assertEqual(rc, 0, err[-2000:])
            self.assertIn("utterances (points x utterances): 4/4 100%", err)
            self.assertIn(f"Dask at {cluster.scheduler_address}", err)
            seen = []
            rows = sorted(read_rows(os.path.join(d, "dask")), key=lambda r: (r["point"], r["clip"]))
            self.assertEqual([(r["system"], r["clip"]) for r in rows],
                             [("codec2_700c", "common_voice_en_102"), ("codec2_700c", "common_voice_en_103"),
                              ("largesc", "common_voice_en_102"), ("largesc", "common_voice_en_103")])
            # per-utterance reports from the workers
            from dask.distributed import Client
            with Client(cluster) as client:
                sim.run_campaign(sim.make_grid(["codec2_700c"], [], [0.3], [1.0], [], 1, {"codec2_700c": 700}),
                                 [dict(name=r["clip"], path=os.path.join(self.cv, "clips", r["clip"] + ".mp3"),
                                       text=None) for r in rows[:2]],
                                 sim.Options(metrics=("stoi",), out_dir=os.path.join(d, "ticks"), save_audio=False),
                                 scheduler=client, progress=False, log=lambda s: None, on_utterance=seen.append)
            self.assertEqual(seen, ["codec2_700c|700|0.3|1|-|1000"] * 2)
            rc, _, err = run_cli(*args, "--jobs", "1", "--no-progress", "--out", os.path.join(d, "local"))
            self.assertEqual(rc, 0, err[-2000:])
            local = sorted(read_rows(os.path.join(d, "local")), key=lambda r: (r["point"], r["clip"]))
            for a, b in zip(rows, local):
                self.assertEqual(a["packets_dropped"], b["packets_dropped"])
                self.assertAlmostEqual(a["m_stoi"], b["m_stoi"], places=6)

    # ---- device

    def test_device_option(self):
        import torch
        self.assertEqual(sim.resolve_device("cpu"), "cpu")
        self.assertEqual(sim.resolve_device("auto"), "cuda" if torch.cuda.is_available() else "cpu")
        with self.assertRaisesRegex(sim.DeviceError, "use auto, cpu, cuda or cuda:N"):
            sim.resolve_device("gpu")
        if not torch.cuda.is_available():
            with self.assertRaisesRegex(sim.DeviceError, "torch sees no CUDA GPU"):
                sim.resolve_device("cuda:0")
        else:
            with self.assertRaisesRegex(sim.DeviceError, "CUDA GPU"):
                sim.resolve_device(f"cuda:{torch.cuda.device_count()}")
        # the device reaches the link's configuration
        from gnuradio.largesc.sim import link
        seen = []

        class Stop(Exception):
            pass

        def fake_run_link(x, sr, cfg):
            seen.append(cfg.device)
            raise Stop()

        clip = C.read_corpus(self.ls)[2][0].clip()
        orig = link.run_link
        link.run_link = fake_run_link
        try:
            for dev in ("cpu", "cuda:1"):
                with self.assertRaises(Stop):
                    sim.run_point(sim.make_grid(["largesc"], [1100], [0.1], [1.0], ["hold"], 1, {})[0], [clip],
                                  sim.Options(metrics=("stoi",), save_audio=False, device=dev))
        finally:
            link.run_link = orig
        self.assertEqual(seen, ["cpu", "cuda:1"])

    # ---- end to end

    def test_librispeech_campaign_end_to_end(self):
        """largesc-sim --corpus on a LibriSpeech tree: the seeded sample of
        whole utterances under the limit, every row with its corpus
        transcript and WER labelled 'corpus', the console saying so."""
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "o")
            rc, stdout, err = run_cli("--corpus", self.ls, "--corpus-split", "test-clean", "--utterances", "2",
                                      "--max-seconds", "1.3", "--seed", "4", "--metrics", "stoi,wer",
                                      "--loss", "0.2", "--budget", "1100", "--baselines", "codec2_700c",
                                      "--weights", "random:1", "--jobs", "1", "--device", "cpu", "--out", out)
            self.assertEqual(rc, 0, err[-2000:])
            self.assertIn(f"speech: LibriSpeech corpus {os.path.join(self.ls, 'test-clean')}: "
                          f"2 of 6 utterances, 1.8 s in all; 2 longer "
                          "than --max-seconds passed over", err)
            self.assertIn("2 sweep points x 2 utterances = 4 runs", err)
            self.assertIn("utterances (points x utterances): 4/4 100%", err)
            self.assertIn("WER reference: the corpus transcript (corpus) for 2 utterance(s)", stdout)
            rows = read_rows(out)
            self.assertEqual(sorted((r["system"], r["clip"]) for r in rows),
                             [("codec2_700c", "19-198-0000"), ("codec2_700c", "84-121-0002"),
                              ("largesc", "19-198-0000"), ("largesc", "84-121-0002")])
            for r in rows:
                self.assertEqual(r["wer_reference"], "corpus")
                self.assertEqual(r["reference_text"], LS[r["clip"]][1])
                self.assertIsNotNone(r["m_stoi"])
            with open(os.path.join(out, "report.json")) as f:
                config = json.load(f)["config"]
            self.assertEqual(config["clips"], ["19-198-0000", "84-121-0002"])
            self.assertEqual(config["wer_references"], {"corpus": 2})
            self.assertEqual(config["device"], "cpu")
            with open(os.path.join(out, "campaign.json")) as f:
                self.assertEqual([c[3] for c in json.load(f)["clips"]], ["corpus", "corpus"])


if __name__ == "__main__":
    gr_unittest.run(qa_corpus)
