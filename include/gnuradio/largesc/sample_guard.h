/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_SAMPLE_GUARD_H
#define INCLUDED_LARGESC_SAMPLE_GUARD_H

#include <gnuradio/largesc/api.h>
#include <gnuradio/sync_block.h>
#include <cstdint>

namespace gr {
namespace largesc {

//! Default magnitude limit of the sample guard: |x|^2 stays far from float32 overflow.
constexpr double SAMPLE_GUARD_LIMIT = 1e15;

/*!
 * \brief Complex samples in, the same out, except: a non-finite sample (NaN or inf
 * in either part) becomes 0, and a sample of magnitude over \p limit is scaled down
 * to that magnitude (its phase, all an FM discriminator reads, is kept).
 * \ingroup largesc
 *
 * \details
 * The first block of the packet modem's receiver (docs/phy.md): without it one inf
 * sample, or a signal x 1e20 (|x|^2 overflows float32 in the discriminator), ends the
 * timing recovery's thread for good. Counters: samples_zeroed(), samples_limited(),
 * and the work calls that changed samples (calls_zeroed(), calls_limited()), each
 * logged as a warning the first time and every 1000th. limit: finite, > 0
 * (std::invalid_argument otherwise).
 */
class LARGESC_API sample_guard : virtual public gr::sync_block
{
public:
    typedef std::shared_ptr<sample_guard> sptr;

    static sptr make(double limit = SAMPLE_GUARD_LIMIT);

    virtual double limit() const = 0;
    virtual uint64_t samples_zeroed() const = 0;
    virtual uint64_t samples_limited() const = 0;
    virtual uint64_t calls_zeroed() const = 0;
    virtual uint64_t calls_limited() const = 0;
};

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_SAMPLE_GUARD_H */
