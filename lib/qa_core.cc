/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Unit tests of the scheduler-free core: bit packing, CRCs, loss models, and the
 * depacketizer core's handling of non-PDU messages.
 */

#include <gnuradio/largesc/bitpack.h>
#include <gnuradio/largesc/crc.h>
#include <gnuradio/largesc/loss_model.h>
#include <gnuradio/largesc/uep_packet.h>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <stdexcept>

using namespace gr::largesc;

BOOST_AUTO_TEST_CASE(bitpack_round_trip_every_width)
{
    rng r(1);
    for (unsigned w = 1; w <= 16; w++) {
        for (size_t n : { size_t(0), size_t(1), size_t(7), size_t(33), size_t(1000) }) {
            std::vector<uint16_t> tok(n);
            for (auto& t : tok)
                t = uint16_t(r.next_u64() & ((1u << w) - 1));
            auto bytes = pack_tokens(tok, w);
            BOOST_REQUIRE_EQUAL(bytes.size(), (n * w + 7) / 8);
            auto back = unpack_tokens(bytes, n, w);
            BOOST_CHECK(back == tok);
        }
    }
}

BOOST_AUTO_TEST_CASE(bitpack_layout_is_msb_first)
{
    // two 11-bit tokens 0x7FF, 0x001 -> 11111111 11100000 000001xx (pad 0)
    auto b = pack_tokens({ 0x7FF, 0x001 }, 11);
    BOOST_REQUIRE_EQUAL(b.size(), 3u);
    BOOST_CHECK_EQUAL(b[0], 0xFF);
    BOOST_CHECK_EQUAL(b[1], 0xE0);
    BOOST_CHECK_EQUAL(b[2], 0x04);
}

BOOST_AUTO_TEST_CASE(bitpack_rejects_bad_input)
{
    BOOST_CHECK_THROW(pack_tokens({ 2048 }, 11), std::invalid_argument);
    BOOST_CHECK_THROW(pack_tokens({ 1 }, 0), std::invalid_argument);
    BOOST_CHECK_THROW(pack_tokens({ 1 }, 17), std::invalid_argument);
    BOOST_CHECK_THROW(unpack_tokens({ 0xFF }, 1, 11), std::invalid_argument);
    std::vector<uint8_t> one{ 0xAB };
    bit_reader rd(one.data(), one.size());
    BOOST_CHECK_EQUAL(rd.get(4), 0xAu);
    BOOST_CHECK_THROW(rd.get(5), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(crc_check_values)
{
    const char* s = "123456789";
    auto p = reinterpret_cast<const uint8_t*>(s);
    BOOST_CHECK_EQUAL(int(crc8(p, 9)), 0xF4);
    BOOST_CHECK_EQUAL(int(crc16(p, 9)), 0x29B1);
    BOOST_CHECK_EQUAL(int(crc16(p, 0)), 0xFFFF);
}

BOOST_AUTO_TEST_CASE(rng_is_reproducible)
{
    rng a(42), b(42), c(43);
    bool differs = false;
    for (int i = 0; i < 100; i++) {
        auto x = a.next_u64();
        BOOST_CHECK_EQUAL(x, b.next_u64());
        differs |= (x != c.next_u64());
    }
    BOOST_CHECK(differs);
}

BOOST_AUTO_TEST_CASE(bernoulli_statistics)
{
    const size_t n = 100000;
    for (double p : { 0.0, 0.05, 0.3, 1.0 }) {
        auto m = loss_model::bernoulli(p, 7);
        auto pat = m.pattern(n);
        auto s = measure_bursts(pat.data(), n);
        const double sd = std::sqrt(p * (1 - p) / n);
        BOOST_CHECK_LE(std::abs(s.loss_rate() - p), 5 * sd + 1e-12);
    }
}

BOOST_AUTO_TEST_CASE(gilbert_elliott_statistics)
{
    const size_t n = 100000;
    for (double L : { 0.05, 0.2 }) {
        for (double B : { 1.5, 3.0 }) {
            auto m = loss_model::gilbert_elliott_mean(L, B, 11);
            BOOST_CHECK_CLOSE(m.mean_loss_rate(), L, 1e-9);
            BOOST_CHECK_CLOSE(m.mean_burst_length(), B, 1e-9);
            auto pat = m.pattern(n);
            auto s = measure_bursts(pat.data(), n);
            // bursts are geometric(1/B): sd of the mean over n_bursts samples
            const double sd_b = std::sqrt(B * (B - 1)) / std::sqrt(double(s.n_bursts));
            BOOST_CHECK_LE(std::abs(s.mean_burst() - B), 5 * sd_b + 1e-9);
            // loss rate: variance inflated by the burst correlation
            const double sd_l = std::sqrt(L * (1 - L) * (2 * B) / n);
            BOOST_CHECK_LE(std::abs(s.loss_rate() - L), 5 * sd_l);
        }
    }
    BOOST_CHECK_THROW(loss_model::gilbert_elliott_mean(0.5, 0.5), std::invalid_argument);
    BOOST_CHECK_THROW(loss_model::gilbert_elliott_mean(0.9, 2.0), std::invalid_argument);
    BOOST_CHECK_THROW(loss_model::gilbert_elliott(1.5, 0.5, 0, 1), std::invalid_argument);
    BOOST_CHECK_THROW(loss_model::gilbert_elliott(0, 0, 0, 1), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(trace_reproduces_exactly)
{
    std::vector<uint8_t> t{ 1, 0, 0, 1, 1 };
    auto rep = loss_model::trace(t, true).pattern(12);
    std::vector<uint8_t> want{ 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0 };
    BOOST_CHECK(rep == want);
    auto once = loss_model::trace(t, false).pattern(7);
    std::vector<uint8_t> want2{ 1, 0, 0, 1, 1, 0, 0 };
    BOOST_CHECK(once == want2);
    BOOST_CHECK_THROW(loss_model::trace({}, true), std::invalid_argument);
    BOOST_CHECK_THROW(loss_model::trace({ 0, 2 }, true), std::invalid_argument);
    BOOST_CHECK_THROW(loss_model::trace_file("/nonexistent/trace.txt"),
                      std::runtime_error);
}

// docs/packet_format.md, receiver vectors: a message that is not a PDU breaks
// a restart run as an invalid packet does (K 1 packets, token 0).
BOOST_AUTO_TEST_CASE(depacketizer_not_pdu_breaks_a_restart_run)
{
    depacketizer_core rx(1);
    auto push = [&rx](int seq) {
        const uint8_t p[5] = { uint8_t(seq), 0x40, 0, 0, 0 };
        return rx.push(p, sizeof p);
    };
    for (int s = 0; s < 40; s++)
        BOOST_REQUIRE(push(s) == parse_status::OK);
    for (int s = 0; s < 3; s++)
        push(s);
    rx.reject_not_pdu();
    for (int s = 3; s < 7; s++)
        push(s);
    rx.flush();
    const depacketizer_counters& c = rx.counters();
    BOOST_CHECK_EQUAL(c.late, 6u);
    BOOST_CHECK_EQUAL(c.restarts, 1u);
    BOOST_CHECK_EQUAL(c.not_pdu, 1u);
    BOOST_CHECK_EQUAL(c.malformed, 1u);
    BOOST_CHECK_EQUAL(c.packets_in, 48u);
    BOOST_CHECK_EQUAL(c.packets_accepted, 41u);
    BOOST_CHECK_EQUAL(c.frames_out, 41u);
}
