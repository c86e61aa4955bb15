/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Construction checks for the Python bindings of the C++ blocks: each
 * parameter arrives as a Python object and is checked for type, finiteness and
 * range here, so that a wrong value fails with the block's and the parameter's
 * name and the allowed values (ValueError) instead of pybind11's "incompatible
 * constructor arguments" or a silent conversion (crc=2 -> True, -1 -> 2^32-1).
 * Booleans must be bool (or numpy.bool_); integers int or a numpy integer, never
 * bool or float; reals int or float (or numpy), never bool, finite.
 */
#ifndef INCLUDED_LARGESC_PARAM_CHECK_H
#define INCLUDED_LARGESC_PARAM_CHECK_H

#include <pybind11/pybind11.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace largesc_params {

namespace py = pybind11;

inline std::string show(py::handle v)
{
    try {
        std::string s = py::repr(v);
        if (s.size() > 60)
            s = s.substr(0, 57) + "...";
        return s +
               (py::isinstance<py::str>(v) || py::isinstance<py::int_>(v) ||
                        py::isinstance<py::float_>(v)
                    ? ""
                    : " (" +
                          std::string(py::str(py::type::handle_of(v).attr("__name__"))) +
                          ")");
    } catch (...) {
        return "<unprintable>";
    }
}

[[noreturn]] inline void
fail(const char* block, const char* name, const std::string& want, py::handle v)
{
    throw py::value_error(std::string(block) + ": " + name + " must be " + want +
                          ", got " + show(v));
}

inline bool is_numpy_bool(py::handle v)
{
    return std::string(py::str(py::type::handle_of(v).attr("__name__"))) == "bool_";
}

inline bool as_bool(const char* block, const char* name, py::handle v)
{
    if (PyBool_Check(v.ptr()))
        return v.ptr() == Py_True;
    if (is_numpy_bool(v))
        return PyObject_IsTrue(v.ptr()) == 1;
    fail(block, name, "a bool (True/False)", v);
}

//! The Python int of an int or numpy integer (never bool or float); fails
//! with `want` otherwise.
inline py::object
as_index(const char* block, const char* name, py::handle v, const std::string& want)
{
    if (PyBool_Check(v.ptr()) || is_numpy_bool(v) || PyFloat_Check(v.ptr()) ||
        !PyIndex_Check(v.ptr()))
        fail(block, name, want, v);
    py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
    if (!i) {
        PyErr_Clear();
        fail(block, name, want, v);
    }
    return i;
}

//! Python int or numpy integer (not bool, not float) in lo..hi.
inline int64_t
as_int(const char* block, const char* name, py::handle v, int64_t lo, int64_t hi)
{
    const std::string want =
        "an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
    py::object i = as_index(block, name, v, want);
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
    if (overflow || x < lo || x > hi)
        fail(block, name, want, v);
    return int64_t(x);
}

//! Unsigned 64-bit integer (a seed): 0..2^64-1.
inline uint64_t as_u64(const char* block, const char* name, py::handle v)
{
    const std::string want = "an integer in 0..2^64-1";
    py::object i = as_index(block, name, v, want);
    const unsigned long long x = PyLong_AsUnsignedLongLong(i.ptr());
    if (PyErr_Occurred()) {
        PyErr_Clear();
        fail(block, name, want, v);
    }
    return uint64_t(x);
}

//! A frame index for the cores' int64 frames: an integer in 0..2^64-1 (as_u64),
//! clamped to INT64_MAX (a frame that far ahead is never reached).
inline int64_t as_frame(const char* block, const char* name, py::handle v)
{
    return int64_t(std::min<uint64_t>(as_u64(block, name, v), uint64_t(INT64_MAX)));
}

//! A time in seconds or None: None -> NaN (no time); an int or float (numpy
//! included; not bool, not str) as a double. NaN and infinities pass as they
//! are: the cores take a time that is not finite for no time.
inline double as_opt_time(const char* block, const char* name, py::handle v)
{
    if (v.is_none())
        return std::nan("");
    const char* want = "a number of seconds or None";
    if (PyBool_Check(v.ptr()) || is_numpy_bool(v) || py::isinstance<py::str>(v) ||
        !(PyFloat_Check(v.ptr()) || PyIndex_Check(v.ptr()) || PyNumber_Check(v.ptr())))
        fail(block, name, want, v);
    PyObject* f = PyNumber_Float(v.ptr());
    if (!f) { // an int too large for a double, or no __float__
        PyErr_Clear();
        fail(block, name, want, v);
    }
    const double x = PyFloat_AsDouble(f);
    Py_DECREF(f);
    return x;
}

//! A finite real number (int, float or numpy number; not bool) in [lo, hi].
inline double as_real(const char* block,
                      const char* name,
                      py::handle v,
                      double lo,
                      double hi,
                      const char* want)
{
    if (PyBool_Check(v.ptr()) || is_numpy_bool(v) || py::isinstance<py::str>(v) ||
        !(PyFloat_Check(v.ptr()) || PyIndex_Check(v.ptr()) || PyNumber_Check(v.ptr())))
        fail(block, name, want, v);
    PyObject* f = PyNumber_Float(v.ptr());
    if (!f) {
        PyErr_Clear();
        fail(block, name, want, v);
    }
    const double x = PyFloat_AsDouble(f);
    Py_DECREF(f);
    if (!std::isfinite(x) || !(x >= lo && x <= hi))
        fail(block, name, want, v);
    return x;
}

inline std::string
as_str(const char* block, const char* name, py::handle v, const char* want)
{
    if (!py::isinstance<py::str>(v))
        fail(block, name, want, v);
    return v.cast<std::string>();
}

} // namespace largesc_params

#endif
