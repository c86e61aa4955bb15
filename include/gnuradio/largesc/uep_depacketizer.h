/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_UEP_DEPACKETIZER_H
#define INCLUDED_LARGESC_UEP_DEPACKETIZER_H

#include <gnuradio/block.h>
#include <gnuradio/largesc/api.h>
#include <limits>
#include <map>
#include <string>

namespace gr {
namespace largesc {

/*!
 * \brief In-band UEP depacketizer: packet PDUs -> one masked token frame per frame.
 * \ingroup largesc
 *
 * \details
 * in: packet PDUs (u8vector), from erasure_channel or a real PHY: lost packets
 * simply never arrive. out: token-frame PDUs in frame order, exactly one per frame
 * index (car: frame, n_q, mask (u8vector, 1 = received), primary (bool: the frame's
 * own packet arrived); cdr: u16vector, 0 where lost). feedback: every
 * feedback_interval frames a dict with loss_rate, mean_burst and window over the
 * last feedback_window frames. flush: any message plays out the frames still
 * waiting for copies (end of stream); so does flush(), and so does the block by
 * itself when every upstream block has finished.
 *
 * The playout delay of \p delay frames (0..2) lets copies up to that offset arrive.
 * Malformed packets (too short, wrong version, wrong length, bad padding, bad CRC,
 * not a u8 PDU, a seq jump of more than 4 frames the next packet does not
 * confirm: bad_seq) are counted, logged and dropped; duplicates and late packets
 * are counted. Counters add up: packets_in = accepted + duplicates + late +
 * malformed + held (held: 1 while a jump waits for confirmation).
 * A message that is not a u8 PDU counts as not_pdu, like an invalid packet
 * (it also breaks a run of packets that would signal a transmitter restart).
 * Parameters: delay 0..2, default_n_q 1..32, feedback_window 1..1e6,
 * feedback_interval 0..1e6 (std::invalid_argument names the parameter).
 * require_crc: the transmitter uses CRCs, so a packet without one is malformed.
 * The restart gap (depacketizer_core's restart_gap, 5..120) is fixed at 32 frames.
 */
class LARGESC_API uep_depacketizer : virtual public gr::block
{
public:
    typedef std::shared_ptr<uep_depacketizer> sptr;
    static sptr make(int delay = 1,
                     int default_n_q = 8,
                     int feedback_window = 125,
                     int feedback_interval = 25,
                     bool require_crc = false);

    //! Plays out the frames still waiting for copies.
    virtual void flush() = 0;
    //! Plays out every frame up to `frame` now (the playout clock; see
    //! depacketizer_core::play_until) and publishes them; play_time (when `frame`
    //! is due to play, seconds; NaN: none; each frame before it 80 ms earlier per
    //! frame) goes into each frame's metadata as `play_time`.
    virtual void
    play_until(uint64_t frame,
               double play_time = std::numeric_limits<double>::quiet_NaN()) = 0;
    //! depacketizer_core::play_arrived(): the frames from the next up to `last`
    //! that have their own packet, in order, are played out and published.
    //! Returns the last frame played out, -1 if none.
    virtual int64_t
    play_arrived(uint64_t last,
                 double play_time = std::numeric_limits<double>::quiet_NaN()) = 0;
    //! depacketizer_core::arrival_ref(): NaN until a packet with rx_time came.
    virtual double arrival_ref(double q = 0.0, size_t last = 0) const = 0;
    //! depacketizer_core::next_frame().
    virtual int64_t next_frame() const = 0;
    //! depacketizer_core::newest_rx_time().
    virtual double newest_rx_time() const = 0;
    //! depacketizer_core::set_clocked(): timed packets wait for play_until().
    virtual void set_clocked(bool on) = 0;
    //! All counters by name (packets_in, packets_accepted, malformed, ...).
    virtual std::map<std::string, uint64_t> counters() const = 0;
    virtual uint64_t packets_in() const = 0;
    virtual uint64_t frames_out() const = 0;
    virtual int delay() const = 0;
};

} // namespace largesc
} // namespace gr

#endif
