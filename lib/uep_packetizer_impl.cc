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
    std::atomic<uint64_t> d_in{ 0 }, d_out{ 0 }, d_rejected{ 0 }, d_bytes{ 0 },
        d_restarts{ 0 };
    // Frame numbering (docs/packet_format.md, "Transmitter: frame indices"):
    // d_prev = input index of the last frame sent, d_pos = its on-air position
    // (seq = d_pos mod 256). d_pos == d_prev until the first restart.
    bool d_sent_any = false;
    uint64_t d_prev = 0, d_pos = 0;
    // the last frame rejected because its index broke the numbering: the next
    // frame numbered right after it confirms a restart
    bool d_have_cand = false;
    uint64_t d_cand = 0;
    const pmt::pmt_t d_out_port;
    const pmt::pmt_t k_frame = pmt::mp("frame"), k_uep_k = pmt::mp("uep_k"),
                     k_copies = pmt::mp("uep_copies");

    void reject(const std::string& why)
    {
        const uint64_t n = ++d_rejected;
        if (n <= 10 || n % 1000 == 0)
            d_logger->warn(
                "dropped a malformed token frame ({:s}); {:d} rejected so far", why, n);
    }

    // An integer PMT (long or uint64) as a signed 64-bit value; false for any
    // other type. A uint64 above 2^63-1 sets big (its value is then in u).
    static bool read_int(const pmt::pmt_t& v, int64_t& out, bool& big, uint64_t& u)
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
    static std::string show(int64_t v, bool big, uint64_t u)
    {
        return big ? std::to_string(u) : std::to_string(v);
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
        if (n_q < 1 || n_q > MAX_CODEBOOKS)
            return reject("a token frame has 1..32 tokens, got " + std::to_string(n_q));

        std::lock_guard<std::mutex> lock(d_mutex);
        int64_t v = 0;
        bool big = false;
        uint64_t u = 0;
        uint64_t frame;
        const pmt::pmt_t f = pmt::dict_ref(meta, k_frame, pmt::PMT_NIL);
        if (!pmt::is_null(f)) {
            if (!read_int(f, v, big, u))
                return reject("frame is not an integer");
            if (big || v < 0)
                return reject("frame must be in 0..2^63-1, got " + show(v, big, u));
            frame = uint64_t(v);
        } else {
            if (d_sent_any && d_prev == uint64_t(INT64_MAX))
                return reject("no frame index and the previous one was 2^63-1");
            frame = d_sent_any ? d_prev + 1 : 0;
        }
        int64_t k = int64_t(n_q);
        const pmt::pmt_t pk = pmt::dict_ref(meta, k_uep_k, pmt::PMT_NIL);
        if (!pmt::is_null(pk)) {
            if (!read_int(pk, k, big, u))
                return reject("uep_k is not an integer");
            if (big || k < 1 || k > int64_t(n_q))
                return reject("uep_k must be in 1..n_q (" + std::to_string(n_q) +
                              "), got " + show(k, big, u));
        }
        int64_t r[2] = { 0, 0 };
        const pmt::pmt_t pc = pmt::dict_ref(meta, k_copies, pmt::PMT_NIL);
        if (!pmt::is_null(pc)) {
            if (pmt::is_s32vector(pc)) {
                size_t n = 0;
                const int32_t* e = pmt::s32vector_elements(pc, n);
                if (n > 2)
                    return reject("uep_copies has " + std::to_string(n) +
                                  " offsets, at most 2");
                for (size_t i = 0; i < n; i++)
                    r[i] = e[i];
            } else if (pmt::is_vector(pc) || pmt::is_tuple(pc)) {
                const size_t n = pmt::length(pc);
                if (n > 2)
                    return reject("uep_copies has " + std::to_string(n) +
                                  " offsets, at most 2");
                for (size_t i = 0; i < n; i++) {
                    const pmt::pmt_t e = pmt::is_vector(pc) ? pmt::vector_ref(pc, i)
                                                            : pmt::tuple_ref(pc, i);
                    if (!read_int(e, r[i], big, u))
                        return reject("uep_copies holds a non-integer");
                    if (big)
                        return reject("uep_copies[" + std::to_string(i) +
                                      "] must be in 0..32, got " + show(r[i], big, u));
                }
            } else {
                return reject("uep_copies is not an s32vector");
            }
            for (size_t i = 0; i < 2; i++)
                if (r[i] < 0 || r[i] > int64_t(MAX_CODEBOOKS))
                    return reject("uep_copies[" + std::to_string(i) +
                                  "] must be in 0..32, got " + std::to_string(r[i]));
        }
        for (size_t i = 0; i < n_q; i++)
            if (tok[i] > MAX_TOKEN)
                return reject("token " + std::to_string(i) + " = " +
                              std::to_string(tok[i]) +
                              " is not an 11-bit token (0..2047)");

        // Frame numbering: the next index, or a jump ahead the 8-bit seq can
        // express, is sent as is; anything else breaks the numbering and is
        // rejected, unless it comes right after such a rejected frame (then
        // the transmitter restarted its numbering: it goes on seamlessly on air).
        uint64_t pos = frame;
        bool restart = false;
        if (d_sent_any) {
            const uint64_t step = frame - d_prev; // wraps for frame < d_prev
            if (frame > d_prev && step <= MAX_FRAME_JUMP) {
                pos = d_pos + step;
            } else if (d_have_cand && frame == d_cand + 1) {
                pos = d_pos + 1;
                restart = true;
            } else {
                d_have_cand = true;
                d_cand = frame;
                return reject("frame " + std::to_string(frame) + " after frame " +
                              std::to_string(d_prev) +
                              (frame <= d_prev ? " goes back" : " jumps more than 127") +
                              " (a restart is taken when the next frame follows it)");
            }
        }
        const std::vector<uint8_t>* bytes;
        try {
            if (restart)
                d_core.reset(); // no copies of the old stream's frames
            bytes = &d_core.packetize(
                pos, tok, n_q, unsigned(k), unsigned(r[0]), unsigned(r[1]));
        } catch (const std::invalid_argument& e) {
            return reject(e.what());
        }
        d_have_cand = false;
        d_sent_any = true;
        d_prev = frame;
        d_pos = pos;
        if (restart) {
            const uint64_t n = ++d_restarts;
            if (n <= 10 || n % 1000 == 0)
                d_logger->warn("frame numbering restarted at frame {:d} (sent as the "
                               "next on-air frame); {:d} restarts so far",
                               frame,
                               n);
        }
        d_bytes += bytes->size();
        // packets carry only their on-air bytes, as over a real PHY
        message_port_pub(
            d_out_port,
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
    uint64_t restarts() const override { return d_restarts; }
};

uep_packetizer::sptr uep_packetizer::make(bool crc)
{
    return gnuradio::make_block_sptr<uep_packetizer_impl>(crc);
}

} // namespace largesc
} // namespace gr
