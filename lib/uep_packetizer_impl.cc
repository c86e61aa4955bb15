/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <gnuradio/io_signature.h>
#include <gnuradio/largesc/uep_packet.h>
#include <gnuradio/largesc/uep_packetizer.h>
#include <atomic>
#include <mutex>
#include <stdexcept>

namespace gr {
namespace largesc {

class uep_packetizer_impl : public uep_packetizer
{
    packetizer_core d_core;
    mutable std::mutex d_mutex;
    std::atomic<uint64_t> d_in{ 0 }, d_out{ 0 }, d_rejected{ 0 }, d_bytes{ 0 };
    uint64_t d_next_frame = 0;
    const pmt::pmt_t d_out_port;
    const pmt::pmt_t k_frame = pmt::mp("frame"), k_uep_k = pmt::mp("uep_k"),
                     k_copies = pmt::mp("uep_copies");

    void reject(const std::string& why)
    {
        const uint64_t n = ++d_rejected;
        if (n == 1 || n % 1000 == 0)
            d_logger->warn("dropped a malformed token frame ({:s}); {:d} rejected so far",
                           why,
                           n);
    }

    static bool read_int(const pmt::pmt_t& v, long& out)
    {
        if (pmt::is_integer(v)) {
            out = pmt::to_long(v);
            return true;
        }
        if (pmt::is_uint64(v)) {
            out = long(pmt::to_uint64(v));
            return true;
        }
        return false;
    }

    // frames_in() counts frames completely handled (packet published or frame
    // rejected), so frames_in() == packets_out() + frames_rejected() between
    // messages: a caller that sees every frame counted in knows no packet is
    // still being built (see run_link's drain condition).
    struct count_on_exit {
        std::atomic<uint64_t>& n;
        ~count_on_exit() { n++; }
    };

    void handle(const pmt::pmt_t& msg)
    {
        const count_on_exit done{ d_in };
        if (!pmt::is_pair(msg) || !pmt::is_dict(pmt::car(msg)) ||
            !pmt::is_u16vector(pmt::cdr(msg)))
            return reject("not a PDU with a u16vector of tokens");
        const pmt::pmt_t meta = pmt::car(msg);
        size_t n_q = 0;
        const uint16_t* tok = pmt::u16vector_elements(pmt::cdr(msg), n_q);

        std::lock_guard<std::mutex> lock(d_mutex);
        uint64_t frame = d_next_frame;
        const pmt::pmt_t f = pmt::dict_ref(meta, k_frame, pmt::PMT_NIL);
        long v;
        if (!pmt::is_null(f)) {
            if (!read_int(f, v) || v < 0)
                return reject("frame is not a non-negative integer");
            frame = uint64_t(v);
        }
        long k = long(n_q);
        const pmt::pmt_t pk = pmt::dict_ref(meta, k_uep_k, pmt::PMT_NIL);
        if (!pmt::is_null(pk) && !read_int(pk, k))
            return reject("uep_k is not an integer");
        long r[2] = { 0, 0 };
        const pmt::pmt_t pc = pmt::dict_ref(meta, k_copies, pmt::PMT_NIL);
        if (!pmt::is_null(pc)) {
            if (pmt::is_s32vector(pc)) {
                size_t n = 0;
                const int32_t* e = pmt::s32vector_elements(pc, n);
                if (n > 2)
                    return reject("uep_copies has more than 2 offsets");
                for (size_t i = 0; i < n; i++)
                    r[i] = e[i];
            } else if (pmt::is_vector(pc) || pmt::is_tuple(pc)) {
                const size_t n = pmt::is_vector(pc) ? pmt::length(pc) : pmt::length(pc);
                if (n > 2)
                    return reject("uep_copies has more than 2 offsets");
                for (size_t i = 0; i < n; i++) {
                    const pmt::pmt_t e =
                        pmt::is_vector(pc) ? pmt::vector_ref(pc, i) : pmt::tuple_ref(pc, i);
                    if (!read_int(e, r[i]))
                        return reject("uep_copies holds a non-integer");
                }
            } else {
                return reject("uep_copies is not an s32vector");
            }
            if (r[0] < 0 || r[1] < 0)
                return reject("uep_copies holds a negative count");
        }
        const std::vector<uint8_t>* bytes;
        try {
            bytes = &d_core.packetize(frame, tok, n_q, unsigned(std::max(k, 0L)),
                                     unsigned(r[0]), unsigned(r[1]));
        } catch (const std::invalid_argument& e) {
            return reject(e.what());
        }
        d_next_frame = frame + 1;
        d_bytes += bytes->size();
        // packets carry only their on-air bytes, as over a real PHY
        message_port_pub(d_out_port,
                         pmt::cons(pmt::make_dict(), pmt::init_u8vector(bytes->size(), *bytes)));
        d_out++; // counted once published
    }

public:
    uep_packetizer_impl(bool crc)
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

    void set_crc(bool crc) override
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        d_core = packetizer_core(crc);
    }
    bool crc() const override
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        return d_core.crc();
    }
    uint64_t frames_in() const override { return d_in; }
    uint64_t packets_out() const override { return d_out; }
    uint64_t frames_rejected() const override { return d_rejected; }
    uint64_t bytes_out() const override { return d_bytes; }
};

uep_packetizer::sptr uep_packetizer::make(bool crc)
{
    return gnuradio::make_block_sptr<uep_packetizer_impl>(crc);
}

} // namespace largesc
} // namespace gr
