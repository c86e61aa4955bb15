/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <gnuradio/largesc/erasure_channel.h>
#include <string>
#include <vector>

#include "param_check.h"

namespace py = pybind11;
using gr::largesc::erasure_channel;

//! The trace pattern argument: a sequence (list, tuple, numpy array) of 0
//! (received) and 1 (lost), each an int or numpy integer; empty for none.
static std::vector<uint8_t> as_trace(const char* block, const char* name, py::handle v)
{
    namespace pc = largesc_params;
    if (py::isinstance<py::str>(v) || py::isinstance<py::bytes>(v) ||
        !PySequence_Check(v.ptr()))
        pc::fail(block,
                 name,
                 "a sequence of 0 (received) and 1 (lost), e.g. a list; empty for none",
                 v);
    std::vector<uint8_t> out;
    size_t i = 0;
    for (py::handle item : py::reinterpret_borrow<py::sequence>(v)) {
        const std::string entry = std::string(name) + " entry " + std::to_string(i++);
        out.push_back(uint8_t(pc::as_int(block, entry.c_str(), item, 0, 1)));
    }
    return out;
}

//! The erasure_channel constructor: checks each argument (with the
//! parameter's name in the error) and makes the block.
static erasure_channel::sptr make_erasure_channel(py::object model,
                                                  py::object loss_rate,
                                                  py::object mean_burst,
                                                  py::object seed,
                                                  py::object p_gb,
                                                  py::object p_bg,
                                                  py::object loss_good,
                                                  py::object loss_bad,
                                                  py::object trace_file,
                                                  py::object trace_repeat,
                                                  py::object stats_interval,
                                                  py::object trace)
{
    namespace pc = largesc_params;
    const char* b = "erasure_channel";
    const char* prob = "a probability in [0, 1]";
    return erasure_channel::make(
        pc::as_str(b,
                   "model",
                   model,
                   "one of 'bernoulli', 'gilbert_elliott', "
                   "'gilbert_elliott_raw', 'trace'"),
        pc::as_real(b, "loss_rate", loss_rate, 0.0, 1.0, prob),
        pc::as_real(b,
                    "mean_burst",
                    mean_burst,
                    1.0,
                    1e6,
                    "a finite number in [1, 1e6] (mean lost packets per burst)"),
        pc::as_u64(b, "seed", seed),
        pc::as_real(b, "p_gb", p_gb, 0.0, 1.0, prob),
        pc::as_real(b, "p_bg", p_bg, 0.0, 1.0, prob),
        pc::as_real(b, "loss_good", loss_good, 0.0, 1.0, prob),
        pc::as_real(b, "loss_bad", loss_bad, 0.0, 1.0, prob),
        pc::as_str(b, "trace_file", trace_file, "a str (a file path, or '')"),
        pc::as_bool(b, "trace_repeat", trace_repeat),
        int(pc::as_int(b, "stats_interval", stats_interval, 0, 1000000000)),
        as_trace(b, "trace", trace));
}

void bind_erasure_channel(py::module& m)
{

    py::class_<erasure_channel,
               gr::block,
               gr::basic_block,
               std::shared_ptr<erasure_channel>>(
        m,
        "erasure_channel",
        "Packet erasure channel: PDUs in on 'in', survivors out on 'out', counters "
        "on 'stats'. Models: bernoulli, gilbert_elliott (loss_rate, mean_burst), "
        "gilbert_elliott_raw (p_gb, p_bg, loss_good, loss_bad), trace (trace_file, "
        "or trace: the 0/1 pattern itself).")
        .def(py::init(&make_erasure_channel),
             py::arg("model") = "bernoulli",
             py::arg("loss_rate") = 0.0,
             py::arg("mean_burst") = 1.0,
             py::arg("seed") = 0,
             py::arg("p_gb") = 0.0,
             py::arg("p_bg") = 1.0,
             py::arg("loss_good") = 0.0,
             py::arg("loss_bad") = 1.0,
             py::arg("trace_file") = "",
             py::arg("trace_repeat") = true,
             py::arg("stats_interval") = 100,
             py::arg("trace") = py::tuple())
        .def(
            "set_loss_rate",
            [](erasure_channel& self, py::object loss_rate) {
                self.set_loss_rate(largesc_params::as_real("erasure_channel",
                                                           "loss_rate",
                                                           loss_rate,
                                                           0.0,
                                                           1.0,
                                                           "a probability in [0, 1]"));
            },
            py::arg("loss_rate"))
        .def("loss_rate", &erasure_channel::loss_rate)
        .def("mean_burst", &erasure_channel::mean_burst)
        .def("model", &erasure_channel::model)
        .def("packets_in", &erasure_channel::packets_in)
        .def("packets_passed", &erasure_channel::packets_passed)
        .def("packets_dropped", &erasure_channel::packets_dropped)
        .def("packets_rejected", &erasure_channel::packets_rejected)
        .def("current_burst", &erasure_channel::current_burst)
        .def("longest_burst", &erasure_channel::longest_burst)
        .def("reset_stats", &erasure_channel::reset_stats);
}
