/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_ERASURE_CHANNEL_H
#define INCLUDED_LARGESC_ERASURE_CHANNEL_H

#include <gnuradio/block.h>
#include <gnuradio/largesc/api.h>
#include <cstdint>
#include <string>
#include <vector>

namespace gr {
namespace largesc {

/*!
 * \brief Packet erasure channel: drops whole PDUs per a seeded loss model.
 * \ingroup largesc
 *
 * \details
 * Message ports:
 * - in: packet PDUs (pair of metadata dict and uniform vector).
 * - out: the PDUs that survive, unchanged (same metadata, same bytes).
 * - stats: a dict every \p stats_interval input messages (0: never) with
 *   packets_in, packets_passed, packets_dropped, packets_rejected,
 *   current_burst, longest_burst, measured_loss_rate and nominal_loss_rate.
 *
 * A message that is not a PDU is counted as rejected and dropped; it does not
 * advance the loss model. A message is counted in packets_in only once it is
 * completely handled (a passed PDU is already in the downstream queue), so
 * packets_in = packets_passed + packets_dropped + packets_rejected between
 * messages, and packets_in equal to what the upstream block sent means no
 * packet is left inside the channel.
 *
 * Models ("model" parameter): "bernoulli" (loss_rate), "gilbert_elliott"
 * (loss_rate and mean_burst), "gilbert_elliott_raw" (p_gb, p_bg, loss_good,
 * loss_bad), "trace" (trace_file, or the pattern \p trace itself when
 * trace_file is empty; trace_repeat). See docs/channel_models.md.
 * Every parameter is checked at construction, also those the chosen model
 * ignores: probabilities finite in [0, 1], mean_burst finite in [1, 1e6]
 * (MAX_MEAN_BURST), stats_interval >= 0, trace entries 0 or 1, not both
 * trace_file and trace; std::invalid_argument names the parameter and the
 * allowed values.
 */
//! Largest mean burst length the erasure channel accepts (packets).
constexpr double MAX_MEAN_BURST = 1e6;

class LARGESC_API erasure_channel : virtual public gr::block
{
public:
    typedef std::shared_ptr<erasure_channel> sptr;

    static sptr make(const std::string& model = "bernoulli",
                     double loss_rate = 0.0,
                     double mean_burst = 1.0,
                     uint64_t seed = 0,
                     double p_gb = 0.0,
                     double p_bg = 1.0,
                     double loss_good = 0.0,
                     double loss_bad = 1.0,
                     const std::string& trace_file = "",
                     bool trace_repeat = true,
                     int stats_interval = 100,
                     const std::vector<uint8_t>& trace = std::vector<uint8_t>());

    //! Changes the mean loss rate at run time (not for the trace model).
    virtual void set_loss_rate(double loss_rate) = 0;
    //! The model's nominal (stationary) loss rate.
    virtual double loss_rate() const = 0;
    virtual double mean_burst() const = 0;
    virtual std::string model() const = 0;

    virtual uint64_t packets_in() const = 0;
    virtual uint64_t packets_passed() const = 0;
    virtual uint64_t packets_dropped() const = 0;
    virtual uint64_t packets_rejected() const = 0;
    //! Length of the run of losses in progress (0 if the last packet passed).
    virtual uint64_t current_burst() const = 0;
    virtual uint64_t longest_burst() const = 0;
    //! Clears the counters (not the loss model state).
    virtual void reset_stats() = 0;
};

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_ERASURE_CHANNEL_H */
