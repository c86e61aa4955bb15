/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_BITPACK_H
#define INCLUDED_LARGESC_BITPACK_H

#include <gnuradio/largesc/api.h>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gr {
namespace largesc {

/*!
 * \brief Writes fields of 1..16 bits into a byte buffer, most significant bit first.
 *
 * Bits are written MSB-first (network order): the first field occupies the high bits
 * of the first byte. Unused low bits of the last byte are zero.
 */
class LARGESC_API bit_writer
{
public:
    explicit bit_writer(std::vector<uint8_t>& out) : d_out(out), d_acc(0), d_nacc(0) {}
    ~bit_writer() { flush(); }
    //! Appends the low \p width bits of \p value. Throws std::invalid_argument if
    //! width is outside 1..16 or value does not fit in width bits.
    void put(uint32_t value, unsigned width);
    //! Pads the last partial byte with zero bits and appends it.
    void flush();

private:
    std::vector<uint8_t>& d_out;
    uint32_t d_acc;
    unsigned d_nacc;
};

/*!
 * \brief Reads MSB-first fields of 1..16 bits from a byte buffer.
 */
class LARGESC_API bit_reader
{
public:
    bit_reader(const uint8_t* data, size_t n_bytes)
        : d_data(data), d_nbits(8 * n_bytes), d_pos(0)
    {
    }
    //! Reads \p width bits. Throws std::out_of_range past the end of the buffer.
    uint32_t get(unsigned width);
    size_t bits_left() const { return d_nbits - d_pos; }
    size_t bit_position() const { return d_pos; }

private:
    const uint8_t* d_data;
    size_t d_nbits;
    size_t d_pos;
};

//! Number of bytes that \p n_tokens tokens of \p width bits occupy: ceil(n*width/8).
LARGESC_API size_t packed_size(size_t n_tokens, unsigned width);

/*!
 * \brief Packs tokens of \p width bits (1..16) into bytes, MSB first.
 * Throws std::invalid_argument for a width outside 1..16 or a token >= 2^width.
 */
LARGESC_API std::vector<uint8_t> pack_tokens(const std::vector<uint16_t>& tokens,
                                             unsigned width);

/*!
 * \brief Unpacks \p n_tokens tokens of \p width bits from \p bytes.
 * Throws std::invalid_argument if the buffer is shorter than packed_size().
 */
LARGESC_API std::vector<uint16_t>
unpack_tokens(const std::vector<uint8_t>& bytes, size_t n_tokens, unsigned width);

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_BITPACK_H */
