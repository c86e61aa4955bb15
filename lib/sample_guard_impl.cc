/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "sample_guard_impl.h"
#include <gnuradio/io_signature.h>
#include <cmath>
#include <complex>
#include <stdexcept>
#include <string>

namespace gr {
namespace largesc {

sample_guard::sptr sample_guard::make(double limit)
{
    return gnuradio::make_block_sptr<sample_guard_impl>(limit);
}

sample_guard_impl::sample_guard_impl(double limit)
    : gr::sync_block("largesc_sample_guard",
                     gr::io_signature::make(1, 1, sizeof(gr_complex)),
                     gr::io_signature::make(1, 1, sizeof(gr_complex))),
      d_limit(limit),
      d_fast(float(limit / 2))
{
    if (!(std::isfinite(limit) && limit > 0 && limit < 3e38))
        throw std::invalid_argument("sample_guard: limit must be a finite magnitude > 0 "
                                    "and < 3e38, got " +
                                    std::to_string(limit));
}

int sample_guard_impl::work(int noutput_items,
                            gr_vector_const_void_star& input_items,
                            gr_vector_void_star& output_items)
{
    const gr_complex* in = static_cast<const gr_complex*>(input_items[0]);
    gr_complex* out = static_cast<gr_complex*>(output_items[0]);
    uint64_t zeroed = 0, limited = 0;
    for (int i = 0; i < noutput_items; i++) {
        const float re = in[i].real(), im = in[i].imag();
        // fast path: both parts finite and small (NaN fails the comparisons)
        if (std::fabs(re) <= d_fast && std::fabs(im) <= d_fast) {
            out[i] = in[i];
            continue;
        }
        if (!std::isfinite(re) || !std::isfinite(im)) {
            out[i] = gr_complex(0, 0);
            zeroed++;
            continue;
        }
        const double a = std::hypot(double(re), double(im));
        if (a > d_limit) {
            const double s = d_limit / a;
            out[i] = gr_complex(float(re * s), float(im * s));
            limited++;
        } else {
            out[i] = in[i];
        }
    }
    if (zeroed) {
        d_zeroed += zeroed;
        const uint64_t n = ++d_calls_zeroed;
        if (n == 1 || n % 1000 == 0)
            d_logger->warn("in: non-finite samples zeroed ({:d} so far)",
                           uint64_t(d_zeroed));
    }
    if (limited) {
        d_limited += limited;
        const uint64_t n = ++d_calls_limited;
        if (n == 1 || n % 1000 == 0)
            d_logger->warn("in: samples over {:g} limited ({:d} so far)",
                           d_limit,
                           uint64_t(d_limited));
    }
    return noutput_items;
}

} // namespace largesc
} // namespace gr
