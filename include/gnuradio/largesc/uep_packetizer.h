/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_UEP_PACKETIZER_H
#define INCLUDED_LARGESC_UEP_PACKETIZER_H

#include <gnuradio/block.h>
#include <gnuradio/largesc/api.h>

namespace gr {
namespace largesc {

/*!
 * \brief In-band UEP packetizer: planned token frames -> packet PDUs.
 * \ingroup largesc
 *
 * \details
 * in: token-frame PDUs (car: frame, optional uep_k and uep_copies; cdr: u16vector of
 * n_q 11-bit tokens). out: packet PDUs (car: empty dict; cdr: u8vector of the
 * on-air bytes, format in docs/packet_format.md). The sequence number is the frame
 * index mod 256, so a frame that never becomes a packet looks like a lost packet at
 * the receiver. Without a plan a frame is sent whole (K = n_q), without copies.
 * Malformed input (not a PDU, cdr not u16vector, n_q outside 1..32, a token > 2047,
 * frame not an integer in 0..2^63-1, uep_k not an integer in 1..n_q, uep_copies
 * not 0..2 integers in 0..32) is counted in frames_rejected, logged and dropped.
 * Frame numbering: a frame whose index is 1..127 after the previous frame sent
 * goes out as is (the receiver plays the skipped frames as lost); any other
 * index (back, repeat, jump > 127) is rejected, except a frame whose index
 * follows such a rejected frame: the transmitter restarted its numbering, the
 * frame goes out as the next on-air frame (counted in restarts()). See
 * docs/packet_format.md.
 * frames_in counts frames completely handled (the packet already published,
 * or the frame rejected): frames_in = packets_out + frames_rejected between
 * messages.
 */
class LARGESC_API uep_packetizer : virtual public gr::block
{
public:
    typedef std::shared_ptr<uep_packetizer> sptr;
    static sptr make(bool crc = false);

    virtual void set_crc(bool crc) = 0;
    virtual bool crc() const = 0;
    virtual uint64_t frames_in() const = 0;
    virtual uint64_t packets_out() const = 0;
    virtual uint64_t frames_rejected() const = 0;
    virtual uint64_t bytes_out() const = 0;
    //! Frame-numbering restarts taken (see the class description).
    virtual uint64_t restarts() const = 0;
};

} // namespace largesc
} // namespace gr

#endif
