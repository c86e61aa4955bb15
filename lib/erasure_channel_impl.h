/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_ERASURE_CHANNEL_IMPL_H
#define INCLUDED_LARGESC_ERASURE_CHANNEL_IMPL_H

#include <gnuradio/largesc/erasure_channel.h>
#include <gnuradio/largesc/loss_model.h>
#include <atomic>
#include <mutex>

namespace gr {
namespace largesc {

class erasure_channel_impl : public erasure_channel
{
private:
    loss_model d_model;
    mutable std::mutex d_mutex; // guards d_model
    int d_stats_interval;
    std::atomic<uint64_t> d_in{ 0 }, d_passed{ 0 }, d_dropped{ 0 }, d_rejected{ 0 };
    std::atomic<uint64_t> d_burst{ 0 }, d_longest{ 0 };
    const pmt::pmt_t d_out_port, d_stats_port;

    void handle_msg(const pmt::pmt_t& msg);
    void publish_stats();

public:
    erasure_channel_impl(loss_model model, int stats_interval);
    ~erasure_channel_impl() override;

    void set_loss_rate(double loss_rate) override;
    double loss_rate() const override;
    double mean_burst() const override;
    std::string model() const override;
    uint64_t packets_in() const override { return d_in; }
    uint64_t packets_passed() const override { return d_passed; }
    uint64_t packets_dropped() const override { return d_dropped; }
    uint64_t packets_rejected() const override { return d_rejected; }
    uint64_t current_burst() const override { return d_burst; }
    uint64_t longest_burst() const override { return d_longest; }
    void reset_stats() override;
};

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_ERASURE_CHANNEL_IMPL_H */
