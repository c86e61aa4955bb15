/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Bindings of the loss feedback packet core (feedback_packet.h): build and
 * parse a feedback packet, tell a packet's kind from its header.
 */

#include <pybind11/pybind11.h>

#include <gnuradio/largesc/feedback_packet.h>

#include "param_check.h"

#include <string>

namespace py = pybind11;
using namespace gr::largesc;
namespace pc = largesc_params;

//! The bytes of a bytes or bytearray argument (anything else fails by name).
static std::string bytes_arg(const char* where, py::handle v)
{
    if (py::isinstance<py::bytes>(v))
        return v.cast<std::string>();
    if (PyByteArray_Check(v.ptr()))
        return std::string(PyByteArray_AsString(v.ptr()),
                           size_t(PyByteArray_Size(v.ptr())));
    pc::fail(where, "data", "bytes or a bytearray", v);
}

static const uint8_t* u8(const std::string& s)
{
    return reinterpret_cast<const uint8_t*>(s.data());
}

static py::dict report_dict(const feedback_report& r)
{
    py::dict d;
    d["seq"] = r.seq;
    d["loss_rate"] = r.loss_rate;
    d["mean_burst"] = r.mean_burst;
    d["window"] = r.window;
    return d;
}

static py::bytes build(py::object seq, py::object loss, py::object burst, py::object win)
{
    const char* w = "build_feedback";
    feedback_report r;
    r.seq = uint8_t(pc::as_int(w, "seq", seq, 0, 255));
    r.loss_rate =
        pc::as_real(w, "loss_rate", loss, 0.0, 1.0, "a finite number in [0, 1]");
    r.mean_burst = pc::as_real(w,
                               "mean_burst",
                               burst,
                               FEEDBACK_MIN_BURST,
                               FEEDBACK_MAX_BURST,
                               "a finite number in [1, 1000] (packets)");
    r.window = uint32_t(pc::as_int(w, "window", win, 0, FEEDBACK_MAX_WINDOW));
    const auto b = build_feedback(r);
    return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
}

void bind_feedback(py::module& m)
{
    m.attr("FEEDBACK_BYTES") = FEEDBACK_BYTES;
    m.attr("FEEDBACK_MAX_WINDOW") = FEEDBACK_MAX_WINDOW;
    m.def("build_feedback",
          &build,
          py::arg("seq"),
          py::arg("loss_rate"),
          py::arg("mean_burst"),
          py::arg("window"),
          "The 10-byte loss feedback packet (docs/packet_format.md, \"Feedback "
          "packets\"): seq 0..255, loss_rate in [0, 1], mean_burst in [1, 1000] "
          "packets, window 0..65535 packets.");
    m.def(
        "parse_feedback_packet",
        [](py::object data) {
            const std::string s = bytes_arg("parse_feedback_packet", data);
            feedback_report r;
            const feedback_status st = parse_feedback_packet(u8(s), s.size(), r);
            if (st != feedback_status::OK)
                return py::make_tuple(std::string(feedback_status_name(st)), py::none());
            return py::make_tuple(std::string("ok"), report_dict(r));
        },
        py::arg("data"),
        "Returns (status, report): status 'ok' and a dict (seq, loss_rate, "
        "mean_burst, window), or the reason the packet is refused and None.");
    m.def(
        "packet_kind",
        [](py::object data) {
            const std::string s = bytes_arg("packet_kind", data);
            return std::string(packet_kind_name(packet_kind(u8(s), s.size())));
        },
        py::arg("data"),
        "'voice', 'feedback' or 'unknown', from the header's byte 1 bits 7..6 "
        "alone (01 = voice, 10 = feedback); nothing else is checked.");
}
