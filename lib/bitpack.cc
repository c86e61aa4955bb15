/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <gnuradio/largesc/bitpack.h>
#include <stdexcept>
#include <string>

namespace gr {
namespace largesc {

static void check_width(unsigned width)
{
    if (width < 1 || width > 16)
        throw std::invalid_argument("bit width must be in 1..16, got " +
                                    std::to_string(width));
}

void bit_writer::put(uint32_t value, unsigned width)
{
    check_width(width);
    if (value >> width)
        throw std::invalid_argument("value " + std::to_string(value) +
                                    " does not fit in " + std::to_string(width) +
                                    " bits (allowed 0.." +
                                    std::to_string((1u << width) - 1) + ")");
    d_acc = (d_acc << width) | value;
    d_nacc += width;
    while (d_nacc >= 8) {
        d_nacc -= 8;
        d_out.push_back(uint8_t(d_acc >> d_nacc));
    }
    d_acc &= (1u << d_nacc) - 1;
}

void bit_writer::flush()
{
    if (d_nacc) {
        d_out.push_back(uint8_t(d_acc << (8 - d_nacc)));
        d_acc = 0;
        d_nacc = 0;
    }
}

uint32_t bit_reader::get(unsigned width)
{
    check_width(width);
    if (d_pos + width > d_nbits)
        throw std::out_of_range("bit_reader: read of " + std::to_string(width) +
                                " bits past the end of a " + std::to_string(d_nbits / 8) +
                                "-byte buffer");
    uint32_t v = 0;
    unsigned left = width;
    while (left) {
        const size_t byte = d_pos >> 3;
        const unsigned off = d_pos & 7; // bits already consumed in this byte
        const unsigned avail = 8 - off;
        const unsigned take = left < avail ? left : avail;
        const uint32_t bits = (d_data[byte] >> (avail - take)) & ((1u << take) - 1);
        v = (v << take) | bits;
        left -= take;
        d_pos += take;
    }
    return v;
}

size_t packed_size(size_t n_tokens, unsigned width)
{
    check_width(width);
    return (n_tokens * width + 7) / 8;
}

std::vector<uint8_t> pack_tokens(const std::vector<uint16_t>& tokens, unsigned width)
{
    std::vector<uint8_t> out;
    out.reserve(packed_size(tokens.size(), width));
    bit_writer w(out);
    for (size_t i = 0; i < tokens.size(); i++) {
        if (width < 16 && (tokens[i] >> width))
            throw std::invalid_argument("token " + std::to_string(i) + " = " +
                                        std::to_string(tokens[i]) + " does not fit in " +
                                        std::to_string(width) + " bits (allowed 0.." +
                                        std::to_string((1u << width) - 1) + ")");
        w.put(tokens[i], width);
    }
    w.flush();
    return out;
}

std::vector<uint16_t>
unpack_tokens(const std::vector<uint8_t>& bytes, size_t n_tokens, unsigned width)
{
    const size_t need = packed_size(n_tokens, width);
    if (bytes.size() < need)
        throw std::invalid_argument("unpack_tokens: " + std::to_string(n_tokens) +
                                    " tokens of " + std::to_string(width) +
                                    " bits need " + std::to_string(need) +
                                    " bytes, got " + std::to_string(bytes.size()));
    std::vector<uint16_t> out(n_tokens);
    bit_reader r(bytes.data(), bytes.size());
    for (size_t i = 0; i < n_tokens; i++)
        out[i] = uint16_t(r.get(width));
    return out;
}

} // namespace largesc
} // namespace gr
