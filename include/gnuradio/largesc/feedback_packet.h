/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_FEEDBACK_PACKET_H
#define INCLUDED_LARGESC_FEEDBACK_PACKET_H

#include <gnuradio/largesc/api.h>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gr {
namespace largesc {

/*
 * Loss feedback packet (byte-exact specification: docs/packet_format.md,
 * "Feedback packets"). 10 bytes, all fields big-endian:
 *
 *  byte 0:    seq          report number mod 256
 *  byte 1:    [7:6] kind (10 = feedback; voice packets have 01), [5:0] reserved, 0
 *  bytes 2-3: loss         round(loss_rate * 65535)
 *  bytes 4-5: burst        round(mean_burst * 64), 64..64000 (1..1000 packets)
 *  bytes 6-7: window       packets the figures cover, 0..65535 (0 = none yet)
 *  bytes 8-9: CRC-16/CCITT-FALSE over bytes 0..7 (mandatory)
 */
constexpr unsigned FEEDBACK_KIND = 2;           //!< byte 1 bits 7..6 of a feedback packet
constexpr unsigned FEEDBACK_BYTES = 10;         //!< length of every feedback packet
constexpr unsigned FEEDBACK_LOSS_SCALE = 65535; //!< loss field = loss_rate * this
constexpr unsigned FEEDBACK_BURST_SCALE = 64;   //!< burst field = mean_burst * this
constexpr double FEEDBACK_MIN_BURST = 1.0;      //!< packets
constexpr double FEEDBACK_MAX_BURST = 1000.0;   //!< packets (MAX_MEAN_BURST)
constexpr unsigned FEEDBACK_MAX_WINDOW = 65535; //!< packets

//! What a packet's header says it is (byte 1 bits 7..6; voice = 01, feedback = 10).
enum class packet_kind_t { UNKNOWN = 0, VOICE, FEEDBACK };
//! The kind of a packet from its header alone: fewer than 2 bytes or kind bits
//! 00 / 11 are UNKNOWN. Nothing else is checked.
LARGESC_API packet_kind_t packet_kind(const uint8_t* data, size_t len);
LARGESC_API const char* packet_kind_name(packet_kind_t k);

//! One loss report, as the depacketizer measures it.
struct LARGESC_API feedback_report {
    uint8_t seq = 0;
    double loss_rate = 0.0;  //!< 0..1, in steps of 1/65535
    double mean_burst = 1.0; //!< 1..1000 packets, in steps of 1/64
    uint32_t window = 0;     //!< packets the figures cover (0..65535)
};

enum class feedback_status {
    OK = 0,
    TOO_SHORT,    //!< fewer than 2 bytes: no header to read
    NOT_FEEDBACK, //!< kind bits are not 10
    BAD_LENGTH,   //!< not exactly 10 bytes
    BAD_CRC,      //!< the CRC does not match
    BAD_RESERVED, //!< byte 1 bits 5..0 are not 0
    BAD_BURST,    //!< burst field outside 64..64000
};
LARGESC_API const char* feedback_status_name(feedback_status s);

/*!
 * Builds a feedback packet. Throws std::invalid_argument for loss_rate outside
 * [0, 1], mean_burst outside [1, 1000] (or not finite) or window > 65535.
 */
LARGESC_API std::vector<uint8_t> build_feedback(const feedback_report& r);

/*!
 * Parses a feedback packet from its bytes alone (checks in the order of
 * feedback_status). On OK fills r. Never throws, never reads past len.
 */
LARGESC_API feedback_status parse_feedback_packet(const uint8_t* data,
                                                  size_t len,
                                                  feedback_report& r);

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_FEEDBACK_PACKET_H */
