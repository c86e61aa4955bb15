/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <pybind11/pybind11.h>

#include <gnuradio/largesc/sample_guard.h>
#include <gnuradio/sync_block.h>

#include "param_check.h"

namespace py = pybind11;
namespace pc = largesc_params;
using gr::largesc::sample_guard;

//! The packet modem receiver's sample guard (docs/phy.md).
void bind_phy(py::module& m)
{
    py::class_<sample_guard,
               gr::sync_block,
               gr::block,
               gr::basic_block,
               std::shared_ptr<sample_guard>>(
        m,
        "sample_guard",
        "Complex samples in, the same out, except: a non-finite sample becomes 0, one of "
        "magnitude over 'limit' is scaled down to it (phase kept). Counted: "
        "samples_zeroed(), "
        "samples_limited(), and the work calls that changed samples (rejections()).")
        .def(py::init([](py::object limit) {
                 return sample_guard::make(pc::as_real("sample_guard",
                                                       "limit",
                                                       limit,
                                                       1e-30,
                                                       1e38,
                                                       "a magnitude > 0 and < 1e38"));
             }),
             py::arg("limit") = gr::largesc::SAMPLE_GUARD_LIMIT)
        .def("limit", &sample_guard::limit)
        .def("samples_zeroed", &sample_guard::samples_zeroed)
        .def("samples_limited", &sample_guard::samples_limited)
        .def("calls_zeroed", &sample_guard::calls_zeroed)
        .def("calls_limited", &sample_guard::calls_limited)
        .def(
            "rejections",
            [](const sample_guard& self) {
                // as the Python blocks' Guard counts: per work call, under "NAME in:
                // reason"
                py::dict d;
                if (self.calls_zeroed())
                    d["largesc_sample_guard in: non-finite samples zeroed"] =
                        self.calls_zeroed();
                if (self.calls_limited())
                    d["largesc_sample_guard in: samples over MAX_SAMPLE_ABS limited"] =
                        self.calls_limited();
                return d;
            },
            "{reason: work calls} of the calls that changed samples.");
    m.attr("SAMPLE_GUARD_LIMIT") = gr::largesc::SAMPLE_GUARD_LIMIT;
}
