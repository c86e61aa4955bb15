/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_CRC_H
#define INCLUDED_LARGESC_CRC_H

#include <gnuradio/largesc/api.h>
#include <cstddef>
#include <cstdint>

namespace gr {
namespace largesc {

/*!
 * \brief CRC-8 (CRC-8/SMBUS): polynomial x^8+x^2+x+1 (0x07), init 0x00,
 * no reflection, no final XOR. crc8("123456789") = 0xF4.
 */
LARGESC_API uint8_t crc8(const uint8_t* data, size_t len);

/*!
 * \brief CRC-16 (CRC-16/CCITT-FALSE, also IBM-3740): polynomial
 * x^16+x^12+x^5+1 (0x1021), init 0xFFFF, no reflection, no final XOR.
 * crc16("123456789") = 0x29B1.
 */
LARGESC_API uint16_t crc16(const uint8_t* data, size_t len);

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_CRC_H */
