/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <gnuradio/largesc/crc.h>
#include <array>

namespace gr {
namespace largesc {

namespace {

std::array<uint8_t, 256> make_crc8_table()
{
    std::array<uint8_t, 256> t{};
    for (unsigned i = 0; i < 256; i++) {
        uint8_t c = uint8_t(i);
        for (int b = 0; b < 8; b++)
            c = (c & 0x80) ? uint8_t((c << 1) ^ 0x07) : uint8_t(c << 1);
        t[i] = c;
    }
    return t;
}

std::array<uint16_t, 256> make_crc16_table()
{
    std::array<uint16_t, 256> t{};
    for (unsigned i = 0; i < 256; i++) {
        uint16_t c = uint16_t(i << 8);
        for (int b = 0; b < 8; b++)
            c = (c & 0x8000) ? uint16_t((c << 1) ^ 0x1021) : uint16_t(c << 1);
        t[i] = c;
    }
    return t;
}

const std::array<uint8_t, 256> crc8_table = make_crc8_table();
const std::array<uint16_t, 256> crc16_table = make_crc16_table();

} // namespace

uint8_t crc8(const uint8_t* data, size_t len)
{
    uint8_t c = 0x00;
    for (size_t i = 0; i < len; i++)
        c = crc8_table[c ^ data[i]];
    return c;
}

uint16_t crc16(const uint8_t* data, size_t len)
{
    uint16_t c = 0xFFFF;
    for (size_t i = 0; i < len; i++)
        c = uint16_t((c << 8) ^ crc16_table[((c >> 8) ^ data[i]) & 0xFF]);
    return c;
}

} // namespace largesc
} // namespace gr
