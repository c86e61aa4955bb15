/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_SAMPLE_GUARD_IMPL_H
#define INCLUDED_LARGESC_SAMPLE_GUARD_IMPL_H

#include <gnuradio/largesc/sample_guard.h>
#include <atomic>

namespace gr {
namespace largesc {

class sample_guard_impl : public sample_guard
{
private:
    const double d_limit;
    const float d_fast; // every component within this: the sample passes untouched
    std::atomic<uint64_t> d_zeroed{ 0 }, d_limited{ 0 }, d_calls_zeroed{ 0 },
        d_calls_limited{ 0 };

public:
    explicit sample_guard_impl(double limit);

    double limit() const override { return d_limit; }
    uint64_t samples_zeroed() const override { return d_zeroed; }
    uint64_t samples_limited() const override { return d_limited; }
    uint64_t calls_zeroed() const override { return d_calls_zeroed; }
    uint64_t calls_limited() const override { return d_calls_limited; }

    int work(int noutput_items,
             gr_vector_const_void_star& input_items,
             gr_vector_void_star& output_items) override;
};

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_SAMPLE_GUARD_IMPL_H */
