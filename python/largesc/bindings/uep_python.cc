/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Bindings of the UEP packet core (format, packetizer/depacketizer cores,
 * token-level simulation) and of the two UEP blocks.
 */

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <algorithm>
#include <climits>
#include <cmath>

#include <gnuradio/largesc/uep_depacketizer.h>
#include <gnuradio/largesc/uep_packet.h>
#include <gnuradio/largesc/uep_packetizer.h>

#include "param_check.h"

namespace py = pybind11;
using namespace gr::largesc;
namespace pc = largesc_params;

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

static std::vector<uint16_t> to_tokens(carray<int64_t> a)
{
    std::vector<uint16_t> t(size_t(a.size()));
    const int64_t* p = a.data();
    for (size_t i = 0; i < t.size(); i++) {
        if (p[i] < 0 || p[i] > int64_t(MAX_TOKEN))
            throw py::value_error("token " + std::to_string(i) + " = " +
                                  std::to_string(p[i]) +
                                  " is not an 11-bit token (0..2047)");
        t[i] = uint16_t(p[i]);
    }
    return t;
}

//! The tokens argument of packetize: a 1-D sequence or numpy array of
//! integers (never floats, bools or a 2-D array, which a cast would
//! silently truncate or flatten), each 0..2047.
static std::vector<uint16_t> tokens_arg(const char* where, py::handle v)
{
    const std::string want = "a 1-D sequence of integer tokens 0..2047";
    py::array a = py::array::ensure(v);
    if (!a)
        pc::fail(where, "tokens", want, v);
    if (a.size() == 0)
        throw py::value_error(std::string(where) +
                              ": a token frame has 1..32 tokens, got 0");
    const char kind = a.dtype().kind();
    if (a.ndim() != 1 || (kind != 'i' && kind != 'u'))
        pc::fail(where, "tokens", want, v);
    return to_tokens(carray<int64_t>::ensure(a));
}

static py::dict frame_dict(const rx_frame& f)
{
    py::dict d;
    d["frame"] = f.frame;
    d["tokens"] = py::array_t<uint16_t>(f.tokens.size(), f.tokens.data());
    d["mask"] = py::array_t<uint8_t>(f.mask.size(), f.mask.data());
    d["primary"] = f.primary;
    if (std::isfinite(f.rx_time)) // only with arrival times, as in the block's PDU
        d["rx_time"] = f.rx_time;
    if (std::isfinite(f.play_time)) // only frames a playout clock played out
        d["play_time"] = f.play_time;
    return d;
}

//! Packet format constants and the packet_header class.
static void bind_packet_header(py::module& m)
{
    m.attr("TOKEN_BITS") = TOKEN_BITS;
    m.attr("HEADER_BYTES") = HEADER_BYTES;
    m.attr("CRC_BYTES") = CRC_BYTES;
    m.attr("MAX_COPIES") = MAX_COPIES;
    m.attr("MAX_COPY_OFFSET") = MAX_COPY_OFFSET;

    py::class_<packet_header>(m, "packet_header", "UEP packet header fields.")
        .def(py::init([](int seq, bool crc, int k, int r1, int r2) {
                 packet_header h;
                 if (seq < 0 || seq > 255)
                     throw py::value_error("seq must be in 0..255");
                 if (k < 1 || k > 32)
                     throw py::value_error("k must be in 1..32");
                 if (r1 < 0 || r1 > 15 || r2 < 0 || r2 > 15)
                     throw py::value_error("r1, r2 must be in 0..15");
                 h.seq = uint8_t(seq);
                 h.crc = crc;
                 h.k = uint8_t(k);
                 h.r = { { uint8_t(r1), uint8_t(r2) } };
                 return h;
             }),
             py::arg("seq") = 0,
             py::arg("crc") = false,
             py::arg("k") = 1,
             py::arg("r1") = 0,
             py::arg("r2") = 0)
        .def_property_readonly("seq", [](const packet_header& h) { return h.seq; })
        .def_property_readonly("crc", [](const packet_header& h) { return h.crc; })
        .def_property_readonly("k", [](const packet_header& h) { return h.k; })
        .def_property_readonly("r1", [](const packet_header& h) { return h.r[0]; })
        .def_property_readonly("r2", [](const packet_header& h) { return h.r[1]; })
        .def_property_readonly("n_tokens", &packet_header::n_tokens)
        .def("__repr__", [](const packet_header& h) {
            return "packet_header(seq=" + std::to_string(h.seq) +
                   ", crc=" + (h.crc ? "True" : "False") + ", k=" + std::to_string(h.k) +
                   ", r1=" + std::to_string(h.r[0]) + ", r2=" + std::to_string(h.r[1]) +
                   ")";
        });
}

//! Packet format functions: packet_size, build_packet, parse_header, parse_packet.
static void bind_packet_format(py::module& m)
{
    m.def("packet_size", &packet_size, py::arg("header"), "Packet bytes for a header.");
    m.def(
        "build_packet",
        [](const packet_header& h, carray<int64_t> tokens) {
            auto t = to_tokens(tokens);
            auto b = build_packet(h, t.data(), t.size());
            return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
        },
        py::arg("header"),
        py::arg("tokens"),
        "Packet bytes: header, then K tokens of frame n, r1 of n-1, r2 of n-2.");
    m.def(
        "parse_header",
        [](const py::bytes& data) -> py::object {
            std::string s = data;
            packet_header h;
            if (parse_header(reinterpret_cast<const uint8_t*>(s.data()), s.size(), h) !=
                parse_status::OK)
                return py::none();
            return py::cast(h);
        },
        py::arg("data"),
        "The packet_header of a packet's first 3 bytes, or None when they are not a "
        "LargeSC header (too short, wrong version). Length and CRC are not checked.");
    m.def(
        "parse_packet",
        [](const py::bytes& data) {
            std::string s = data;
            packet_header h;
            std::vector<uint16_t> tok;
            auto st = parse_packet(
                reinterpret_cast<const uint8_t*>(s.data()), s.size(), h, tok);
            if (st != parse_status::OK)
                return py::make_tuple(
                    std::string(parse_status_name(st)), py::none(), py::none());
            return py::make_tuple(
                std::string("ok"), h, py::array_t<uint16_t>(tok.size(), tok.data()));
        },
        py::arg("data"),
        "Returns (status, header, tokens); status 'ok' or the reason it is malformed.");
}

//! The scheduler-free packetizer_core class.
static void bind_packetizer_core(py::module& m)
{
    py::class_<packetizer_core>(m, "packetizer_core", "Scheduler-free UEP packetizer.")
        .def(py::init<bool>(), py::arg("crc") = false)
        .def(
            "packetize",
            [](packetizer_core& self,
               py::object frame,
               py::object tokens,
               py::object k,
               py::object r1,
               py::object r2) {
                const char* w = "packetizer_core.packetize";
                const uint64_t f = pc::as_u64(w, "frame", frame);
                auto t = tokens_arg(w, tokens);
                const int64_t max_cb = 32;
                auto b = self.packetize(f,
                                        t.data(),
                                        t.size(),
                                        unsigned(pc::as_int(w, "k", k, 0, max_cb)),
                                        unsigned(pc::as_int(w, "r1", r1, 0, max_cb)),
                                        unsigned(pc::as_int(w, "r2", r2, 0, max_cb)));
                return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
            },
            py::arg("frame"),
            py::arg("tokens"),
            py::arg("k"),
            py::arg("r1") = py::int_(0),
            py::arg("r2") = py::int_(0))
        .def_property_readonly("last_header", &packetizer_core::last_header)
        .def("reset", &packetizer_core::reset);
}

//! The scheduler-free depacketizer_core class.
static void bind_depacketizer_core(py::module& m)
{
    py::class_<depacketizer_core>(
        m, "depacketizer_core", "Scheduler-free UEP depacketizer.")
        .def(py::init([](py::object delay,
                         py::object default_n_q,
                         py::object fb_window,
                         py::object restart_gap,
                         py::object require_crc) {
                 const char* b = "depacketizer_core";
                 return depacketizer_core(
                     unsigned(pc::as_int(b, "delay", delay, 0, 2)),
                     unsigned(pc::as_int(b, "default_n_q", default_n_q, 1, 32)),
                     unsigned(pc::as_int(b, "feedback_window", fb_window, 1, 1000000)),
                     unsigned(pc::as_int(b, "restart_gap", restart_gap, 5, 120)),
                     pc::as_bool(b, "require_crc", require_crc));
             }),
             py::arg("delay") = 1,
             py::arg("default_n_q") = 8,
             py::arg("feedback_window") = 125,
             py::arg("restart_gap") = 32,
             py::arg("require_crc") = false)
        .def(
            "push",
            [](depacketizer_core& self, const py::bytes& data, py::object rx_time) {
                std::string s = data;
                // None: no time; NaN or infinite: no time either (the core ignores it)
                const double t =
                    pc::as_opt_time("depacketizer_core.push", "rx_time", rx_time);
                return std::string(parse_status_name(
                    self.push(reinterpret_cast<const uint8_t*>(s.data()), s.size(), t)));
            },
            py::arg("data"),
            py::arg("rx_time") = py::none(),
            "Takes one packet (bytes); rx_time: its arrival time in seconds on the "
            "receiver's clock, or None (then gaps are judged by seq alone).")
        .def("pop",
             [](depacketizer_core& self) {
                 py::list out;
                 for (const auto& f : self.pop())
                     out.append(frame_dict(f));
                 return out;
             })
        .def("flush", &depacketizer_core::flush)
        .def(
            "play_until",
            [](depacketizer_core& self, py::object frame, py::object play_time) {
                self.play_until(
                    pc::as_frame("depacketizer_core.play_until", "frame", frame),
                    pc::as_opt_time(
                        "depacketizer_core.play_until", "play_time", play_time));
            },
            py::arg("frame"),
            py::arg("play_time") = py::none(),
            "Plays out every frame up to this index, whether its packets came or not; "
            "play_time: when this frame is due to play (seconds), each frame before it "
            "80 ms earlier per frame, noted as their play_time.")
        .def(
            "play_arrived",
            [](depacketizer_core& self, py::object last, py::object play_time) {
                return self.play_arrived(
                    pc::as_frame("depacketizer_core.play_arrived", "last", last),
                    pc::as_opt_time(
                        "depacketizer_core.play_arrived", "play_time", play_time));
            },
            py::arg("last"),
            py::arg("play_time") = py::none(),
            "Plays out the frames from the next up to `last` while each has its own "
            "packet (the playout clock's early release); play times as play_until's. "
            "Returns the last frame played out, -1 if none.")
        .def("arrival_ref",
             &depacketizer_core::arrival_ref,
             py::arg("q") = 0.0,
             py::arg("last") = 0)
        .def("next_frame", &depacketizer_core::next_frame, "The next frame to play out.")
        .def("newest_rx_time", &depacketizer_core::newest_rx_time)
        .def(
            "set_clocked",
            [](depacketizer_core& self, py::object on) {
                self.set_clocked(pc::as_bool("depacketizer_core.set_clocked", "on", on));
            },
            py::arg("on"))
        .def("clocked", &depacketizer_core::clocked)
        .def("reset", &depacketizer_core::reset)
        .def("counters",
             [](const depacketizer_core& self) {
                 py::dict d;
                 self.counters().for_each(
                     [&d](const char* name, uint64_t v) { d[name] = v; });
                 return d;
             })
        .def("window_stats", &depacketizer_core::window_stats);
}

//! simulate_uep: the token-level UEP simulation over numpy arrays.
static void bind_simulate_uep(py::module& m)
{
    m.def(
        "simulate_uep",
        [](carray<int32_t> k,
           carray<int32_t> copies,
           carray<uint8_t> lost,
           size_t n_codebooks) {
            const size_t n = size_t(k.size());
            if (size_t(lost.size()) != n)
                throw py::value_error("k and lost must have the same length");
            size_t D = 0;
            if (copies.ndim() == 2) {
                if (size_t(copies.shape(0)) != n)
                    throw py::value_error("copies must have shape [N, D]");
                D = size_t(copies.shape(1));
            } else if (copies.size() != 0) {
                throw py::value_error("copies must have shape [N, D] (D = 0..2)");
            }
            if (D > MAX_COPY_OFFSET)
                throw py::value_error("copies: D must be 0..2");
            if (n_codebooks < 1 || n_codebooks > 32)
                throw py::value_error("n_codebooks must be in 1..32");
            py::array_t<uint8_t> mask({ n, n_codebooks });
            {
                py::gil_scoped_release release;
                simulate_uep(k.data(),
                             copies.data(),
                             D,
                             lost.data(),
                             n,
                             n_codebooks,
                             mask.mutable_data());
            }
            return mask;
        },
        py::arg("k"),
        py::arg("copies"),
        py::arg("lost"),
        py::arg("n_codebooks") = 32,
        "Token-level UEP simulation: received mask [N, n_codebooks] for plans k[N], "
        "copies[N, D] and packet losses lost[N] (see docs/interfaces.md).");
}

//! run_packet_path: packetizer -> loss -> depacketizer without a flowgraph.
static void bind_run_packet_path(py::module& m)
{
    m.def(
        "run_packet_path",
        [](py::array_t<uint16_t, py::array::c_style | py::array::forcecast> tokens,
           carray<int32_t> k,
           carray<int32_t> copies,
           carray<uint8_t> lost,
           unsigned delay,
           bool crc) {
            if (tokens.ndim() != 2)
                throw py::value_error("tokens must have shape [N, n_q]");
            const size_t n = size_t(tokens.shape(0)), n_q = size_t(tokens.shape(1));
            if (size_t(k.size()) != n || size_t(lost.size()) != n)
                throw py::value_error("tokens, k and lost must have the same length N");
            size_t D = 0;
            if (copies.ndim() == 2 && size_t(copies.shape(0)) == n)
                D = size_t(copies.shape(1));
            else if (copies.size() != 0)
                throw py::value_error("copies must have shape [N, D] (D = 0..2)");
            py::array_t<uint16_t> tok_out({ n, size_t(MAX_CODEBOOKS) });
            py::array_t<uint8_t> mask_out({ n, size_t(MAX_CODEBOOKS) });
            uint64_t bytes;
            {
                py::gil_scoped_release release;
                bytes = run_packet_path(tokens.data(),
                                        n_q,
                                        k.data(),
                                        copies.data(),
                                        D,
                                        lost.data(),
                                        n,
                                        delay,
                                        crc,
                                        tok_out.mutable_data(),
                                        mask_out.mutable_data());
            }
            return py::make_tuple(tok_out, mask_out, bytes);
        },
        py::arg("tokens"),
        py::arg("k"),
        py::arg("copies"),
        py::arg("lost"),
        py::arg("delay") = 2,
        py::arg("crc") = false,
        "Packetizer -> loss -> depacketizer in C++ without a flowgraph. Returns "
        "(tokens_out [N, 32], mask [N, 32], bytes_sent).");
}

//! The uep_packetizer block.
static void bind_uep_packetizer_block(py::module& m)
{
    py::class_<uep_packetizer,
               gr::block,
               gr::basic_block,
               std::shared_ptr<uep_packetizer>>(
        m,
        "uep_packetizer",
        "UEP packetizer: token-frame PDUs on 'in' -> packet PDUs on 'out'.")
        .def(py::init([](py::object crc) {
                 return uep_packetizer::make(pc::as_bool("uep_packetizer", "crc", crc));
             }),
             py::arg("crc") = false)
        .def(
            "set_crc",
            [](uep_packetizer& self, py::object crc) {
                self.set_crc(pc::as_bool("uep_packetizer", "crc", crc));
            },
            py::arg("crc"))
        .def("crc", &uep_packetizer::crc)
        .def("frames_in", &uep_packetizer::frames_in)
        .def("packets_out", &uep_packetizer::packets_out)
        .def("frames_rejected", &uep_packetizer::frames_rejected)
        .def("bytes_out", &uep_packetizer::bytes_out)
        .def("restarts", &uep_packetizer::restarts);
}

//! The uep_depacketizer block.
static void bind_uep_depacketizer_block(py::module& m)
{
    py::class_<uep_depacketizer,
               gr::block,
               gr::basic_block,
               std::shared_ptr<uep_depacketizer>>(
        m,
        "uep_depacketizer",
        "UEP depacketizer: packet PDUs on 'in' -> one masked token frame per frame on "
        "'out'; "
        "loss feedback on 'feedback'; 'flush' plays out pending frames.")
        .def(py::init([](py::object delay,
                         py::object default_n_q,
                         py::object fb_window,
                         py::object fb_interval,
                         py::object require_crc) {
                 const char* b = "uep_depacketizer";
                 return uep_depacketizer::make(
                     int(pc::as_int(b, "delay", delay, 0, 2)),
                     int(pc::as_int(b, "default_n_q", default_n_q, 1, 32)),
                     int(pc::as_int(b, "feedback_window", fb_window, 1, 1000000)),
                     int(pc::as_int(b, "feedback_interval", fb_interval, 0, 1000000)),
                     pc::as_bool(b, "require_crc", require_crc));
             }),
             py::arg("delay") = 1,
             py::arg("default_n_q") = 8,
             py::arg("feedback_window") = 125,
             py::arg("feedback_interval") = 25,
             py::arg("require_crc") = false)
        .def("flush", &uep_depacketizer::flush)
        .def(
            "play_until",
            [](uep_depacketizer& self, py::object frame, py::object play_time) {
                self.play_until(pc::as_u64("uep_depacketizer.play_until", "frame", frame),
                                pc::as_opt_time("uep_depacketizer.play_until",
                                                "play_time",
                                                play_time));
            },
            py::arg("frame"),
            py::arg("play_time") = py::none(),
            "Plays out every frame up to this index now (the playout clock); play_time "
            "(seconds): when this frame is due to play, each frame before it 80 ms "
            "earlier per frame, in their metadata as play_time.")
        .def(
            "play_arrived",
            [](uep_depacketizer& self, py::object last, py::object play_time) {
                return self.play_arrived(
                    pc::as_u64("uep_depacketizer.play_arrived", "last", last),
                    pc::as_opt_time(
                        "uep_depacketizer.play_arrived", "play_time", play_time));
            },
            py::arg("last"),
            py::arg("play_time") = py::none(),
            "Plays out the frames from the next up to `last` while each has its own "
            "packet (the playout clock's early release) and publishes them; play times "
            "as play_until's. Returns the last frame played out, -1 if none.")
        .def("arrival_ref",
             &uep_depacketizer::arrival_ref,
             py::arg("q") = 0.0,
             py::arg("last") = 0)
        .def("next_frame", &uep_depacketizer::next_frame, "The next frame to play out.")
        .def("newest_rx_time", &uep_depacketizer::newest_rx_time)
        .def(
            "set_clocked",
            [](uep_depacketizer& self, py::object on) {
                self.set_clocked(pc::as_bool("uep_depacketizer.set_clocked", "on", on));
            },
            py::arg("on"))
        .def("counters", &uep_depacketizer::counters)
        .def("packets_in", &uep_depacketizer::packets_in)
        .def("frames_out", &uep_depacketizer::frames_out)
        .def("delay", &uep_depacketizer::delay);
}

void bind_uep(py::module& m)
{
    bind_packet_header(m);
    bind_packet_format(m);
    bind_packetizer_core(m);
    bind_depacketizer_core(m);
    bind_simulate_uep(m);
    bind_run_packet_path(m);
    bind_uep_packetizer_block(m);
    bind_uep_depacketizer_block(m);
}
