/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "uep_packetizer_impl.h"
#include <gnuradio/io_signature.h>
#include <cmath>
#include <stdexcept>

namespace gr {
namespace largesc {

uep_packetizer::sptr uep_packetizer::make(bool crc)
{
    return gnuradio::make_block_sptr<uep_packetizer_impl>(crc);
}

uep_packetizer_impl::uep_packetizer_impl(bool crc)
    : gr::block("uep_packetizer",
                gr::io_signature::make(0, 0, 0),
                gr::io_signature::make(0, 0, 0)),
      d_core(crc),
      d_out_port(pmt::mp("out"))
{
    message_port_register_in(pmt::mp("in"));
    message_port_register_out(d_out_port);
    set_msg_handler(pmt::mp("in"), [this](const pmt::pmt_t& m) { handle(m); });
}

void uep_packetizer_impl::set_crc(bool crc)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_core.set_crc(crc);
}

bool uep_packetizer_impl::crc() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_core.crc();
}

void uep_packetizer_impl::handle(const pmt::pmt_t& msg)
{
    const count_on_exit done{ d_in };
    frame_request req;
    std::string why = read_tokens(msg, req);
    if (!why.empty())
        return reject(why);

    std::lock_guard<std::mutex> lock(d_mutex);
    why = read_request(pmt::car(msg), req);
    if (!why.empty())
        return reject(why);
    const frame_placement at = d_core.place_frame(req.frame);
    if (!at.placed)
        return reject(numbering_break(req.frame));
    const std::vector<uint8_t>* bytes;
    try {
        bytes = &d_core.packetize_placed(req.frame,
                                         at,
                                         req.tokens,
                                         req.n_q,
                                         unsigned(req.k),
                                         unsigned(req.r[0]),
                                         unsigned(req.r[1]));
    } catch (const std::invalid_argument& e) {
        return reject(e.what());
    }
    if (at.restart)
        count_restart(req.frame);
    publish(
        *bytes, req.frame, pmt::dict_ref(pmt::car(msg), k_capture_time, pmt::PMT_NIL));
}

void uep_packetizer_impl::reject(const std::string& why)
{
    const uint64_t n = ++d_rejected;
    if (n <= 10 || n % 1000 == 0)
        d_logger->warn(
            "dropped a malformed token frame ({:s}); {:d} rejected so far", why, n);
}

void uep_packetizer_impl::count_restart(uint64_t frame)
{
    const uint64_t n = ++d_restarts;
    if (n <= 10 || n % 1000 == 0)
        d_logger->warn("frame numbering restarted at frame {:d} (sent as the "
                       "next on-air frame); {:d} restarts so far",
                       frame,
                       n);
}

void uep_packetizer_impl::publish(const std::vector<uint8_t>& bytes,
                                  uint64_t frame,
                                  const pmt::pmt_t& capture_time)
{
    d_bytes += bytes.size();
    // The bytes are all that goes on air. The metadata holds two local notes for
    // the transmit blocks and measurements (the receiver never reads them): the
    // frame index and, when the frame had one, its capture time (docs/latency.md).
    pmt::pmt_t meta = pmt::dict_add(pmt::make_dict(), k_frame, pmt::from_uint64(frame));
    if (pmt::is_real(capture_time) && std::isfinite(pmt::to_double(capture_time)))
        meta = pmt::dict_add(meta, k_capture_time, capture_time);
    message_port_pub(d_out_port,
                     pmt::cons(meta, pmt::init_u8vector(bytes.size(), bytes)));
    d_out++; // counted once published
}

// ------------------------------------------------------------- input checks

std::string uep_packetizer_impl::read_tokens(const pmt::pmt_t& msg, frame_request& req)
{
    if (!pmt::is_pair(msg) || !pmt::is_dict(pmt::car(msg)) ||
        !pmt::is_u16vector(pmt::cdr(msg)))
        return "not a PDU with a u16vector of tokens";
    req.tokens = pmt::u16vector_elements(pmt::cdr(msg), req.n_q);
    if (req.n_q < 1 || req.n_q > MAX_CODEBOOKS)
        return "a token frame has 1..32 tokens, got " + std::to_string(req.n_q);
    return "";
}

std::string uep_packetizer_impl::read_request(const pmt::pmt_t& meta,
                                              frame_request& req) const
{
    std::string why = read_frame_index(meta, req);
    if (why.empty())
        why = read_uep_k(meta, req);
    if (why.empty())
        why = read_copies(meta, req);
    if (why.empty())
        why = check_token_values(req);
    return why;
}

std::string uep_packetizer_impl::read_frame_index(const pmt::pmt_t& meta,
                                                  frame_request& req) const
{
    const pmt::pmt_t f = pmt::dict_ref(meta, k_frame, pmt::PMT_NIL);
    if (pmt::is_null(f)) { // numbered previous + 1 (0 first)
        const bool started = d_core.numbering_started();
        if (started && d_core.last_frame() == uint64_t(INT64_MAX))
            return "no frame index and the previous one was 2^63-1";
        req.frame = started ? d_core.last_frame() + 1 : 0;
        return "";
    }
    int64_t v = 0;
    bool big = false;
    uint64_t u = 0;
    if (!read_int(f, v, big, u))
        return "frame is not an integer";
    if (big || v < 0)
        return "frame must be in 0..2^63-1, got " + show(v, big, u);
    req.frame = uint64_t(v);
    return "";
}

std::string uep_packetizer_impl::read_uep_k(const pmt::pmt_t& meta,
                                            frame_request& req) const
{
    const size_t n_q = req.n_q;
    int64_t k = int64_t(n_q);
    const pmt::pmt_t pk = pmt::dict_ref(meta, k_uep_k, pmt::PMT_NIL);
    if (!pmt::is_null(pk)) {
        bool big = false;
        uint64_t u = 0;
        if (!read_int(pk, k, big, u))
            return "uep_k is not an integer";
        if (big || k < 1 || k > int64_t(n_q))
            return "uep_k must be in 1..n_q (" + std::to_string(n_q) + "), got " +
                   show(k, big, u);
    }
    req.k = k;
    return "";
}

std::string uep_packetizer_impl::read_copies(const pmt::pmt_t& meta,
                                             frame_request& req) const
{
    const pmt::pmt_t pc = pmt::dict_ref(meta, k_copies, pmt::PMT_NIL);
    if (pmt::is_null(pc))
        return "";
    const bool s32 = pmt::is_s32vector(pc);
    if (!s32 && !pmt::is_vector(pc) && !pmt::is_tuple(pc))
        return "uep_copies is not an s32vector";
    const size_t n = pmt::length(pc);
    if (n > 2)
        return "uep_copies has " + std::to_string(n) + " offsets, at most 2";
    for (size_t i = 0; i < n; i++) {
        if (s32) {
            req.r[i] = pmt::s32vector_ref(pc, i);
            continue;
        }
        const pmt::pmt_t e =
            pmt::is_vector(pc) ? pmt::vector_ref(pc, i) : pmt::tuple_ref(pc, i);
        bool big = false;
        uint64_t u = 0;
        if (!read_int(e, req.r[i], big, u))
            return "uep_copies holds a non-integer";
        if (big)
            return "uep_copies[" + std::to_string(i) + "] must be in 0..32, got " +
                   show(req.r[i], big, u);
    }
    for (size_t i = 0; i < 2; i++)
        if (req.r[i] < 0 || req.r[i] > int64_t(MAX_CODEBOOKS))
            return "uep_copies[" + std::to_string(i) + "] must be in 0..32, got " +
                   std::to_string(req.r[i]);
    return "";
}

std::string uep_packetizer_impl::check_token_values(const frame_request& req)
{
    for (size_t i = 0; i < req.n_q; i++)
        if (req.tokens[i] > MAX_TOKEN)
            return "token " + std::to_string(i) + " = " + std::to_string(req.tokens[i]) +
                   " is not an 11-bit token (0..2047)";
    return "";
}

// Why place_frame() refused a frame.
std::string uep_packetizer_impl::numbering_break(uint64_t frame) const
{
    const uint64_t prev = d_core.last_frame();
    return "frame " + std::to_string(frame) + " after frame " + std::to_string(prev) +
           (frame <= prev ? " goes back" : " jumps more than 127") +
           " (a restart is taken when the next frame follows it)";
}

// An integer PMT (long or uint64) as a signed 64-bit value; false for any
// other type. A uint64 above 2^63-1 sets big (its value is then in u).
bool uep_packetizer_impl::read_int(const pmt::pmt_t& v,
                                   int64_t& out,
                                   bool& big,
                                   uint64_t& u)
{
    big = false;
    if (pmt::is_integer(v)) {
        out = int64_t(pmt::to_long(v));
        return true;
    }
    if (pmt::is_uint64(v)) {
        u = pmt::to_uint64(v);
        if (u > uint64_t(INT64_MAX)) {
            big = true;
            out = INT64_MAX;
        } else {
            out = int64_t(u);
        }
        return true;
    }
    return false;
}

std::string uep_packetizer_impl::show(int64_t v, bool big, uint64_t u)
{
    return big ? std::to_string(u) : std::to_string(v);
}

} // namespace largesc
} // namespace gr
