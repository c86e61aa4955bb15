/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_UEP_PACKETIZER_IMPL_H
#define INCLUDED_LARGESC_UEP_PACKETIZER_IMPL_H

#include <gnuradio/largesc/uep_packet.h>
#include <gnuradio/largesc/uep_packetizer.h>
#include <atomic>
#include <mutex>
#include <string>

namespace gr {
namespace largesc {

class uep_packetizer_impl : public uep_packetizer
{
private:
    packetizer_core d_core; // also keeps the frame numbering (place_frame)
    mutable std::mutex d_mutex;
    std::atomic<uint64_t> d_in{ 0 }, d_out{ 0 }, d_rejected{ 0 }, d_bytes{ 0 },
        d_restarts{ 0 };
    const pmt::pmt_t d_out_port;
    const pmt::pmt_t k_frame = pmt::mp("frame"), k_uep_k = pmt::mp("uep_k"),
                     k_copies = pmt::mp("uep_copies"),
                     k_capture_time = pmt::mp("capture_time");

    //! A token frame read from its PDU and checked (what handle() sends).
    struct frame_request {
        const uint16_t* tokens = nullptr;
        size_t n_q = 0;
        uint64_t frame = 0;
        int64_t k = 0;
        int64_t r[2] = { 0, 0 };
    };

    // frames_in() counts frames completely handled (packet published or frame
    // rejected), so frames_in() == packets_out() + frames_rejected() between
    // messages: a caller that sees every frame counted in knows no packet is
    // still being built (see run_link's drain condition).
    struct count_on_exit {
        std::atomic<uint64_t>& n;
        ~count_on_exit() { n++; }
    };

    void handle(const pmt::pmt_t& msg);
    void reject(const std::string& why);
    void count_restart(uint64_t frame);
    void publish(const std::vector<uint8_t>& bytes,
                 uint64_t frame,
                 const pmt::pmt_t& capture_time);

    // Input checks, in the documented order; each returns "" or why the frame is
    // rejected. Those after read_tokens() run with d_mutex held.
    static std::string read_tokens(const pmt::pmt_t& msg, frame_request& req);
    std::string read_request(const pmt::pmt_t& meta, frame_request& req) const;
    std::string read_frame_index(const pmt::pmt_t& meta, frame_request& req) const;
    std::string read_uep_k(const pmt::pmt_t& meta, frame_request& req) const;
    std::string read_copies(const pmt::pmt_t& meta, frame_request& req) const;
    static std::string check_token_values(const frame_request& req);
    std::string numbering_break(uint64_t frame) const;

    static bool read_int(const pmt::pmt_t& v, int64_t& out, bool& big, uint64_t& u);
    static std::string show(int64_t v, bool big, uint64_t u);

public:
    uep_packetizer_impl(bool crc);

    void set_crc(bool crc) override;
    bool crc() const override;
    uint64_t frames_in() const override { return d_in; }
    uint64_t packets_out() const override { return d_out; }
    uint64_t frames_rejected() const override { return d_rejected; }
    uint64_t bytes_out() const override { return d_bytes; }
    uint64_t restarts() const override { return d_restarts; }
};

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_UEP_PACKETIZER_IMPL_H */
