/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Hand-written bindings of the scheduler-free core (bit packing, CRC, loss
 * models). Array-in/array-out entry points take and return numpy arrays so that
 * sweeps run without a Python loop per packet.
 */

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <gnuradio/largesc/bitpack.h>
#include <gnuradio/largesc/crc.h>
#include <gnuradio/largesc/loss_model.h>

namespace py = pybind11;
using namespace gr::largesc;

using u8_array = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

static std::vector<uint8_t> to_bytes(const py::buffer& b)
{
    py::buffer_info info = b.request();
    const auto* p = static_cast<const uint8_t*>(info.ptr);
    return std::vector<uint8_t>(p, p + info.size * info.itemsize);
}

//! Bit packing: pack_tokens, unpack_tokens, packed_size.
static void bind_bitpack(py::module& m)
{
    m.def(
        "pack_tokens",
        [](py::array_t<int64_t, py::array::c_style | py::array::forcecast> tokens,
           unsigned width) {
            std::vector<uint16_t> t(tokens.size());
            auto r = tokens.unchecked<1>();
            for (py::ssize_t i = 0; i < r.shape(0); i++) {
                if (r(i) < 0 || r(i) > 0xFFFF)
                    throw py::value_error("token " + std::to_string(i) + " = " +
                                          std::to_string(r(i)) + " does not fit in " +
                                          std::to_string(width) + " bits");
                t[i] = uint16_t(r(i));
            }
            auto out = pack_tokens(t, width);
            return py::array_t<uint8_t>(out.size(), out.data());
        },
        py::arg("tokens"),
        py::arg("width") = 11,
        "Packs tokens of `width` bits (1..16) into bytes, MSB first. Raises "
        "ValueError for a token that does not fit.");
    m.def(
        "unpack_tokens",
        [](const py::buffer& data, size_t n_tokens, unsigned width) {
            auto out = unpack_tokens(to_bytes(data), n_tokens, width);
            return py::array_t<uint16_t>(out.size(), out.data());
        },
        py::arg("data"),
        py::arg("n_tokens"),
        py::arg("width") = 11,
        "Unpacks `n_tokens` tokens of `width` bits from bytes; returns uint16 array.");
    m.def("packed_size", &packed_size, py::arg("n_tokens"), py::arg("width") = 11);
}

//! Checksums: crc8, crc16.
static void bind_crc(py::module& m)
{
    m.def(
        "crc8",
        [](const py::buffer& data) {
            auto v = to_bytes(data);
            return crc8(v.data(), v.size());
        },
        py::arg("data"),
        "CRC-8/SMBUS: poly 0x07, init 0x00, no reflection, no final XOR.");
    m.def(
        "crc16",
        [](const py::buffer& data) {
            auto v = to_bytes(data);
            return crc16(v.data(), v.size());
        },
        py::arg("data"),
        "CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR.");
}

//! Loss pattern statistics: the burst_stats class and measure_bursts.
static void bind_burst_stats(py::module& m)
{
    py::class_<burst_stats>(m, "burst_stats", "Loss statistics of a 0/1 pattern.")
        .def_readonly("n_packets", &burst_stats::n_packets)
        .def_readonly("n_lost", &burst_stats::n_lost)
        .def_readonly("n_bursts", &burst_stats::n_bursts)
        .def_readonly("longest_burst", &burst_stats::longest_burst)
        .def_property_readonly("loss_rate", &burst_stats::loss_rate)
        .def_property_readonly("mean_burst", &burst_stats::mean_burst)
        .def("__repr__", [](const burst_stats& s) {
            return "burst_stats(n_packets=" + std::to_string(s.n_packets) +
                   ", n_lost=" + std::to_string(s.n_lost) +
                   ", n_bursts=" + std::to_string(s.n_bursts) +
                   ", longest_burst=" + std::to_string(s.longest_burst) + ")";
        });
    m.def(
        "measure_bursts",
        [](u8_array pattern) {
            return measure_bursts(pattern.data(), size_t(pattern.size()));
        },
        py::arg("pattern"),
        "Loss rate and burst statistics of a 0/1 array (1 = lost).");
}

//! The loss_model class, its kind enum and its static constructors.
static void bind_loss_model(py::module& m)
{
    py::class_<loss_model> lm(
        m,
        "loss_model",
        "Seeded packet loss model (Bernoulli, Gilbert-Elliott or trace); see "
        "docs/channel_models.md. Build one with the static constructors.");
    py::enum_<loss_model::kind_t>(lm, "kind")
        .value("BERNOULLI", loss_model::BERNOULLI)
        .value("GILBERT_ELLIOTT", loss_model::GILBERT_ELLIOTT)
        .value("TRACE", loss_model::TRACE);
    lm.def_static(
          "bernoulli", &loss_model::bernoulli, py::arg("loss_rate"), py::arg("seed") = 0)
        .def_static("gilbert_elliott",
                    &loss_model::gilbert_elliott,
                    py::arg("p_gb"),
                    py::arg("p_bg"),
                    py::arg("loss_good") = 0.0,
                    py::arg("loss_bad") = 1.0,
                    py::arg("seed") = 0)
        .def_static("gilbert_elliott_mean",
                    &loss_model::gilbert_elliott_mean,
                    py::arg("loss_rate"),
                    py::arg("mean_burst"),
                    py::arg("seed") = 0)
        .def_static(
            "trace",
            [](u8_array pattern, bool repeat) {
                std::vector<uint8_t> v(pattern.data(), pattern.data() + pattern.size());
                return loss_model::trace(v, repeat);
            },
            py::arg("pattern"),
            py::arg("repeat") = true)
        .def_static("trace_file",
                    &loss_model::trace_file,
                    py::arg("path"),
                    py::arg("repeat") = true)
        .def_static("read_trace_file",
                    [](const std::string& path) {
                        auto v = loss_model::read_trace_file(path);
                        return py::array_t<uint8_t>(v.size(), v.data());
                    })
        .def("next", &loss_model::next, "Fate of the next packet: True if lost.")
        .def(
            "pattern",
            [](loss_model& self, size_t n) {
                py::array_t<uint8_t> out(n);
                {
                    py::gil_scoped_release release;
                    self.fill(out.mutable_data(), n);
                }
                return out;
            },
            py::arg("n"),
            "Fate of the next n packets as a uint8 numpy array (1 = lost).")
        .def("reset", &loss_model::reset)
        .def("set_loss_rate", &loss_model::set_loss_rate, py::arg("loss_rate"))
        .def_property_readonly("kind", &loss_model::kind)
        .def_property_readonly("kind_name", &loss_model::kind_name)
        .def_property_readonly("mean_loss_rate", &loss_model::mean_loss_rate)
        .def_property_readonly("mean_burst_length", &loss_model::mean_burst_length)
        .def_property_readonly("p_gb", &loss_model::p_gb)
        .def_property_readonly("p_bg", &loss_model::p_bg)
        .def_property_readonly("loss_good", &loss_model::loss_good)
        .def_property_readonly("loss_bad", &loss_model::loss_bad)
        .def_property_readonly("seed", &loss_model::seed)
        .def("__repr__", [](const loss_model& self) {
            return "loss_model(" + self.kind_name() +
                   ", mean_loss_rate=" + std::to_string(self.mean_loss_rate()) +
                   ", mean_burst_length=" + std::to_string(self.mean_burst_length()) +
                   ")";
        });
}

void bind_core(py::module& m)
{
    bind_bitpack(m);
    bind_crc(m);
    bind_burst_stats(m);
    bind_loss_model(m);
}
