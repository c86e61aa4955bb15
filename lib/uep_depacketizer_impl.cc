/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "uep_depacketizer_impl.h"
#include <gnuradio/io_signature.h>
#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>

namespace gr {
namespace largesc {

uep_depacketizer::sptr uep_depacketizer::make(int delay,
                                              int default_n_q,
                                              int feedback_window,
                                              int feedback_interval,
                                              bool require_crc)
{
    // signed values are checked before any unsigned conversion
    if (delay < 0 || delay > 2)
        throw std::invalid_argument("uep_depacketizer: delay (playout delay in frames) "
                                    "must be 0..2, got " +
                                    std::to_string(delay));
    if (default_n_q < 1 || default_n_q > 32)
        throw std::invalid_argument("uep_depacketizer: default_n_q (token frame width "
                                    "before any packet names one) must be 1..32, got " +
                                    std::to_string(default_n_q));
    if (feedback_window < 1 || feedback_window > 1000000)
        throw std::invalid_argument("uep_depacketizer: feedback_window (frames) must be "
                                    "1..1000000, got " +
                                    std::to_string(feedback_window));
    if (feedback_interval < 0 || feedback_interval > 1000000)
        throw std::invalid_argument(
            "uep_depacketizer: feedback_interval (frames) must be 0..1000000 (0 = no "
            "feedback), got " +
            std::to_string(feedback_interval));
    return gnuradio::make_block_sptr<uep_depacketizer_impl>(
        delay, default_n_q, feedback_window, feedback_interval, require_crc);
}

uep_depacketizer_impl::uep_depacketizer_impl(
    int delay, int default_n_q, int fb_window, int fb_interval, bool require_crc)
    : gr::block("uep_depacketizer",
                gr::io_signature::make(0, 0, 0),
                gr::io_signature::make(0, 0, 0)),
      d_core(
          unsigned(delay), unsigned(default_n_q), unsigned(fb_window), 32, require_crc),
      d_fb_interval(unsigned(fb_interval)),
      d_next_fb(unsigned(fb_interval)),
      d_out_port(pmt::mp("out")),
      d_fb_port(pmt::mp("feedback"))
{
    message_port_register_in(pmt::mp("in"));
    message_port_register_in(pmt::mp("flush"));
    message_port_register_out(d_out_port);
    message_port_register_out(d_fb_port);
    set_msg_handler(pmt::mp("in"), [this](const pmt::pmt_t& m) { handle(m); });
    set_msg_handler(pmt::mp("flush"), [this](const pmt::pmt_t&) { flush(); });
    // End of stream: when every upstream block is done, take the packets
    // still queued, play out the frames waiting for copies, then let GNU
    // Radio tell the downstream blocks.
    set_msg_handler(pmt::mp("system"), [this](const pmt::pmt_t& msg) {
        if (pmt::is_pair(msg) && pmt::eqv(pmt::car(msg), pmt::mp("done"))) {
            pmt::pmt_t m;
            while ((m = delete_head_nowait(pmt::mp("in"))))
                handle(m);
            flush();
        }
        system_handler(msg);
    });
}

pmt::pmt_t uep_depacketizer_impl::tail(const rx_frame& f)
{
    const size_t n = f.tokens.size();
    int kind = -1;
    if (n <= 32) {
        size_t ones = 0;
        for (uint8_t m : f.mask)
            ones += m ? 1 : 0;
        kind = ones == n ? 1 : (ones == 0 ? 0 : -1);
    }
    if (kind < 0)
        return make_tail(f);
    pmt::pmt_t& t = d_tail[kind][n][f.primary ? 1 : 0];
    if (!t)
        t = make_tail(f);
    return t;
}

pmt::pmt_t uep_depacketizer_impl::make_tail(const rx_frame& f) const
{
    return pmt::acons(
        k_nq,
        pmt::from_long(long(f.tokens.size())),
        pmt::acons(k_mask,
                   pmt::init_u8vector(f.mask.size(), f.mask),
                   pmt::acons(k_primary, pmt::from_bool(f.primary), pmt::PMT_NIL)));
}

void uep_depacketizer_impl::publish_ready()
{
    d_core.drain([this](const rx_frame& f) {
        pmt::pmt_t meta = tail(f);
        if (std::isfinite(
                f.rx_time)) // when its first token arrived (latency, docs/latency.md)
            meta = pmt::acons(k_rx_time, pmt::from_double(f.rx_time), meta);
        if (std::isfinite(f.play_time)) // when the playout clock let it go
            meta = pmt::acons(k_play_time, pmt::from_double(f.play_time), meta);
        meta = pmt::acons(k_frame, pmt::from_uint64(f.frame), meta);
        message_port_pub(d_out_port,
                         pmt::cons(meta, pmt::init_u16vector(f.tokens.size(), f.tokens)));
    });
    if (d_fb_interval && d_core.counters().frames_out >= d_next_fb) {
        d_next_fb = d_core.counters().frames_out + d_fb_interval;
        const burst_stats s = d_core.window_stats();
        pmt::pmt_t fb = pmt::make_dict();
        fb = pmt::dict_add(fb, pmt::mp("loss_rate"), pmt::from_double(s.loss_rate()));
        fb = pmt::dict_add(fb,
                           pmt::mp("mean_burst"),
                           pmt::from_double(s.n_bursts ? s.mean_burst() : 1.0));
        fb = pmt::dict_add(fb, pmt::mp("window"), pmt::from_long(long(s.n_packets)));
        message_port_pub(d_fb_port, pmt::cons(fb, pmt::make_u8vector(0, 0)));
    }
}

// The packet's arrival time (seconds) from its metadata's rx_time, NaN if
// there is none or it is not a real number (the core then works by seq alone).
double uep_depacketizer_impl::rx_time(const pmt::pmt_t& meta) const
{
    if (!pmt::is_dict(meta))
        return std::nan("");
    const pmt::pmt_t t = pmt::dict_ref(meta, k_rx_time, pmt::PMT_NIL);
    if (pmt::is_real(t) || pmt::is_integer(t) || pmt::is_uint64(t))
        return pmt::to_double(t);
    return std::nan("");
}

void uep_depacketizer_impl::handle(const pmt::pmt_t& msg)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    if (!pmt::is_pair(msg) || !pmt::is_u8vector(pmt::cdr(msg))) {
        d_core.reject_not_pdu(); // counted as any invalid packet, breaks a restart run
        const uint64_t n = d_core.counters().not_pdu;
        if (n == 1 || n % 1000 == 0)
            d_logger->warn("dropped a message that is not a u8 packet PDU; {:d} so far",
                           n);
        return;
    }
    size_t len = 0;
    const uint8_t* p = pmt::u8vector_elements(pmt::cdr(msg), len);
    const uint64_t bad_before = d_core.counters().malformed;
    const parse_status st = d_core.push(p, len, rx_time(pmt::car(msg)));
    const uint64_t bad = d_core.counters().malformed;
    if (bad != bad_before && (bad <= 10 || bad % 1000 == 0))
        d_logger->warn("dropped a malformed packet of {:d} bytes ({:s}); {:d} "
                       "malformed so far",
                       len,
                       st == parse_status::OK
                           ? "bad_seq: a sequence jump the next packet did not confirm"
                           : parse_status_name(st),
                       bad);
    publish_ready();
}

void uep_depacketizer_impl::flush()
{
    std::lock_guard<std::mutex> lock(d_mutex);
    const uint64_t held = d_core.counters().held;
    d_core.flush();
    if (held)
        d_logger->warn("end of stream: dropped a packet held as an unconfirmed seq "
                       "jump (bad_seq)");
    publish_ready();
}

void uep_depacketizer_impl::play_until(uint64_t frame, double play_time)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_core.play_until(int64_t(std::min<uint64_t>(frame, uint64_t(INT64_MAX))), play_time);
    publish_ready();
}

int64_t uep_depacketizer_impl::play_arrived(uint64_t last, double play_time)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    const int64_t m = d_core.play_arrived(
        int64_t(std::min<uint64_t>(last, uint64_t(INT64_MAX))), play_time);
    publish_ready();
    return m;
}

double uep_depacketizer_impl::arrival_ref(double q, size_t last) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_core.arrival_ref(q, last);
}

// The core's counters (LARGESC_DEPACKETIZER_COUNTERS), not_pdu included.
std::map<std::string, uint64_t> uep_depacketizer_impl::counters() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    std::map<std::string, uint64_t> out;
    d_core.counters().for_each([&out](const char* name, uint64_t v) { out[name] = v; });
    return out;
}

uint64_t uep_depacketizer_impl::packets_in() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_core.counters().packets_in;
}

uint64_t uep_depacketizer_impl::frames_out() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_core.counters().frames_out;
}

} // namespace largesc
} // namespace gr
