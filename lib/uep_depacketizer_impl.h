/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_UEP_DEPACKETIZER_IMPL_H
#define INCLUDED_LARGESC_UEP_DEPACKETIZER_IMPL_H

#include <gnuradio/largesc/uep_depacketizer.h>
#include <gnuradio/largesc/uep_packet.h>
#include <mutex>

namespace gr {
namespace largesc {

class uep_depacketizer_impl : public uep_depacketizer
{
private:
    depacketizer_core d_core;
    mutable std::mutex d_mutex;
    unsigned d_fb_interval;
    uint64_t d_next_fb;
    const pmt::pmt_t d_out_port, d_fb_port;
    const pmt::pmt_t k_frame = pmt::mp("frame"), k_nq = pmt::mp("n_q"),
                     k_mask = pmt::mp("mask"), k_primary = pmt::mp("primary"),
                     k_rx_time = pmt::mp("rx_time"), k_play_time = pmt::mp("play_time");

    // Metadata of a frame: {frame, n_q, mask, primary}. Everything but the
    // frame index repeats from frame to frame, so the dict is built as
    // (frame . i) consed onto a shared, immutable tail (n_q, mask, primary)
    // for the common cases (mask all ones, or all zeros), which costs one
    // pair and one integer per frame instead of four pairs, two integers and
    // a vector. A PMT dict is an association list: dict_ref and friends see
    // the same four keys either way. The shared mask vectors must be treated
    // as read-only, as every PMT a block receives.
    pmt::pmt_t d_tail[2][33][2]; // [all ones?][n_q][primary?], built on first use

    pmt::pmt_t tail(const rx_frame& f);
    pmt::pmt_t make_tail(const rx_frame& f) const;
    void publish_ready(); // called with d_mutex held
    void handle(const pmt::pmt_t& msg);
    double rx_time(const pmt::pmt_t& meta) const;

public:
    uep_depacketizer_impl(
        int delay, int default_n_q, int fb_window, int fb_interval, bool require_crc);

    void flush() override;
    void play_until(uint64_t frame, double play_time) override;
    int64_t play_arrived(uint64_t last, double play_time) override;
    double arrival_ref(double q = 0.0, size_t last = 0) const override;
    int64_t next_frame() const override
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        return d_core.next_frame();
    }
    double newest_rx_time() const override
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        return d_core.newest_rx_time();
    }
    void set_clocked(bool on) override
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        d_core.set_clocked(on);
    }
    std::map<std::string, uint64_t> counters() const override;
    uint64_t packets_in() const override;
    uint64_t frames_out() const override;
    int delay() const override { return int(d_core.delay()); }
};

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_UEP_DEPACKETIZER_IMPL_H */
