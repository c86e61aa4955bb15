/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <gnuradio/largesc/crc.h>
#include <gnuradio/largesc/feedback_packet.h>
#include <gnuradio/largesc/uep_packet.h>
#include <cmath>
#include <stdexcept>
#include <string>

namespace gr {
namespace largesc {

namespace {

void put_u16(std::vector<uint8_t>& out, unsigned v)
{
    out.push_back(uint8_t(v >> 8));
    out.push_back(uint8_t(v & 0xFF));
}

unsigned get_u16(const uint8_t* p) { return unsigned(p[0] << 8) | p[1]; }

} // namespace

packet_kind_t packet_kind(const uint8_t* data, size_t len)
{
    if (len < 2)
        return packet_kind_t::UNKNOWN;
    const unsigned bits = data[1] >> 6;
    if (bits == PACKET_VERSION)
        return packet_kind_t::VOICE;
    if (bits == FEEDBACK_KIND)
        return packet_kind_t::FEEDBACK;
    return packet_kind_t::UNKNOWN;
}

const char* packet_kind_name(packet_kind_t k)
{
    switch (k) {
    case packet_kind_t::VOICE:
        return "voice";
    case packet_kind_t::FEEDBACK:
        return "feedback";
    default:
        return "unknown";
    }
}

const char* feedback_status_name(feedback_status s)
{
    switch (s) {
    case feedback_status::OK:
        return "ok";
    case feedback_status::TOO_SHORT:
        return "too_short";
    case feedback_status::NOT_FEEDBACK:
        return "not_feedback";
    case feedback_status::BAD_LENGTH:
        return "bad_length";
    case feedback_status::BAD_CRC:
        return "bad_crc";
    case feedback_status::BAD_RESERVED:
        return "bad_reserved";
    case feedback_status::BAD_BURST:
        return "bad_burst";
    }
    return "unknown";
}

std::vector<uint8_t> build_feedback(const feedback_report& r)
{
    if (!std::isfinite(r.loss_rate) || r.loss_rate < 0.0 || r.loss_rate > 1.0)
        throw std::invalid_argument("feedback loss_rate must be a finite number in "
                                    "[0, 1], got " +
                                    std::to_string(r.loss_rate));
    if (!std::isfinite(r.mean_burst) || r.mean_burst < FEEDBACK_MIN_BURST ||
        r.mean_burst > FEEDBACK_MAX_BURST)
        throw std::invalid_argument("feedback mean_burst must be a finite number in "
                                    "[1, 1000] packets, got " +
                                    std::to_string(r.mean_burst));
    if (r.window > FEEDBACK_MAX_WINDOW)
        throw std::invalid_argument("feedback window must be 0..65535 packets, got " +
                                    std::to_string(r.window));
    std::vector<uint8_t> out;
    out.reserve(FEEDBACK_BYTES);
    out.push_back(r.seq);
    out.push_back(uint8_t(FEEDBACK_KIND << 6));
    put_u16(out, unsigned(std::lround(r.loss_rate * FEEDBACK_LOSS_SCALE)));
    put_u16(out, unsigned(std::lround(r.mean_burst * FEEDBACK_BURST_SCALE)));
    put_u16(out, r.window);
    put_u16(out, crc16(out.data(), out.size()));
    return out;
}

feedback_status parse_feedback_packet(const uint8_t* data, size_t len, feedback_report& r)
{
    if (len < 2)
        return feedback_status::TOO_SHORT;
    if (packet_kind(data, len) != packet_kind_t::FEEDBACK)
        return feedback_status::NOT_FEEDBACK;
    if (len != FEEDBACK_BYTES)
        return feedback_status::BAD_LENGTH;
    if (crc16(data, FEEDBACK_BYTES - CRC_BYTES) != get_u16(data + FEEDBACK_BYTES - 2))
        return feedback_status::BAD_CRC;
    if (data[1] & 0x3F)
        return feedback_status::BAD_RESERVED;
    const unsigned burst = get_u16(data + 4);
    if (burst < unsigned(FEEDBACK_MIN_BURST * FEEDBACK_BURST_SCALE) ||
        burst > unsigned(FEEDBACK_MAX_BURST * FEEDBACK_BURST_SCALE))
        return feedback_status::BAD_BURST;
    r.seq = data[0];
    r.loss_rate = double(get_u16(data + 2)) / FEEDBACK_LOSS_SCALE;
    r.mean_burst = double(burst) / FEEDBACK_BURST_SCALE;
    r.window = get_u16(data + 6);
    return feedback_status::OK;
}

} // namespace largesc
} // namespace gr
