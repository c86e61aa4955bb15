/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <gnuradio/largesc/erasure_channel.h>

namespace py = pybind11;

void bind_erasure_channel(py::module& m)
{
    using erasure_channel = gr::largesc::erasure_channel;

    py::class_<erasure_channel,
               gr::block,
               gr::basic_block,
               std::shared_ptr<erasure_channel>>(
        m,
        "erasure_channel",
        "Packet erasure channel: PDUs in on 'in', survivors out on 'out', counters "
        "on 'stats'. Models: bernoulli, gilbert_elliott (loss_rate, mean_burst), "
        "gilbert_elliott_raw (p_gb, p_bg, loss_good, loss_bad), trace.")
        .def(py::init(&erasure_channel::make),
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
             py::arg("stats_interval") = 100)
        .def("set_loss_rate", &erasure_channel::set_loss_rate, py::arg("loss_rate"))
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
