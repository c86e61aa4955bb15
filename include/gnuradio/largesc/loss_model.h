/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_LOSS_MODEL_H
#define INCLUDED_LARGESC_LOSS_MODEL_H

#include <gnuradio/largesc/api.h>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gr {
namespace largesc {

/*!
 * \brief xoshiro256** pseudo-random generator seeded through splitmix64.
 *
 * Fixed algorithm, so a seed gives the same sequence on every platform and
 * compiler (std:: distributions do not guarantee that).
 */
class LARGESC_API rng
{
public:
    explicit rng(uint64_t seed = 0) { seed_with(seed); }
    void seed_with(uint64_t seed);
    uint64_t next_u64();
    //! Uniform double in [0, 1) with 53 random bits.
    double uniform() { return (next_u64() >> 11) * 0x1.0p-53; }

private:
    uint64_t d_s[4];
};

/*!
 * \brief Loss statistics of a 0/1 pattern (1 = lost).
 */
struct LARGESC_API burst_stats {
    uint64_t n_packets = 0;
    uint64_t n_lost = 0;
    uint64_t n_bursts = 0; //!< maximal runs of consecutive losses
    uint64_t longest_burst = 0;
    double loss_rate() const { return n_packets ? double(n_lost) / n_packets : 0.0; }
    //! Mean length of a loss run; 0 if there was no loss.
    double mean_burst() const { return n_bursts ? double(n_lost) / n_bursts : 0.0; }
};

LARGESC_API burst_stats measure_bursts(const uint8_t* pattern, size_t n);

/*!
 * \brief Packet loss models with a seeded, reproducible generator.
 *
 * - Bernoulli: each packet lost independently with probability loss_rate.
 * - Gilbert-Elliott: two-state Markov chain (Good, Bad). In state s a packet is
 *   lost with probability loss_good or loss_bad; after each packet the chain moves
 *   Good->Bad with probability p_gb and Bad->Good with probability p_bg. The first
 *   state is drawn from the stationary distribution. gilbert_elliott_mean() builds
 *   the simple Gilbert channel (loss_good = 0, loss_bad = 1) with a given mean loss
 *   rate L and mean burst length B: p_bg = 1/B, p_gb = L/(B(1-L)).
 * - Trace: a fixed 0/1 sequence (1 = lost), repeated or not. Without repeat,
 *   packets past the end of the trace are not lost.
 *
 * Invalid parameters throw std::invalid_argument with the allowed range.
 */
class LARGESC_API loss_model
{
public:
    enum kind_t { BERNOULLI = 0, GILBERT_ELLIOTT = 1, TRACE = 2 };

    static loss_model bernoulli(double loss_rate, uint64_t seed = 0);
    static loss_model gilbert_elliott(
        double p_gb, double p_bg, double loss_good, double loss_bad, uint64_t seed = 0);
    static loss_model
    gilbert_elliott_mean(double loss_rate, double mean_burst, uint64_t seed = 0);
    static loss_model trace(const std::vector<uint8_t>& pattern, bool repeat = true);
    static loss_model trace_file(const std::string& path, bool repeat = true);

    /*!
     * Reads a loss trace: '0' (received) and '1' (lost) characters; whitespace and
     * commas separate nothing and are ignored; '#' starts a comment to the end of
     * the line. Throws std::runtime_error naming the file and line for an
     * unreadable file, any other character, or a trace with no entry.
     */
    static std::vector<uint8_t> read_trace_file(const std::string& path);

    //! Draws the fate of the next packet: true if it is lost.
    bool next();
    //! Writes the fate of the next n packets (1 = lost) to out.
    void fill(uint8_t* out, size_t n);
    std::vector<uint8_t> pattern(size_t n);
    //! Restarts the model from its seed (or the start of the trace).
    void reset();

    /*!
     * Changes the mean loss rate at run time. Bernoulli: the new rate. Gilbert-
     * Elliott: becomes the simple Gilbert channel with this rate and the current
     * mean burst length (the rate is capped so that p_gb <= 1). Trace: throws.
     */
    void set_loss_rate(double loss_rate);

    kind_t kind() const { return d_kind; }
    std::string kind_name() const;
    //! Stationary probability that a packet is lost.
    double mean_loss_rate() const;
    //! Expected length of a run of consecutive losses (stationary).
    double mean_burst_length() const;
    double p_gb() const { return d_p_gb; }
    double p_bg() const { return d_p_bg; }
    double loss_good() const { return d_loss_good; }
    double loss_bad() const { return d_loss_bad; }
    bool in_bad_state() const { return d_bad; }
    uint64_t seed() const { return d_seed; }
    const std::vector<uint8_t>& trace_pattern() const { return d_trace; }
    bool trace_repeat() const { return d_repeat; }

private:
    loss_model() = default;
    void init_state();

    kind_t d_kind = BERNOULLI;
    uint64_t d_seed = 0;
    rng d_rng;
    double d_p_gb = 0.0, d_p_bg = 1.0, d_loss_good = 0.0, d_loss_bad = 1.0;
    double d_loss_rate = 0.0; // Bernoulli
    bool d_bad = false;
    std::vector<uint8_t> d_trace;
    bool d_repeat = true;
    size_t d_pos = 0;
};

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_LOSS_MODEL_H */
