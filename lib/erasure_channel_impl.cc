/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "erasure_channel_impl.h"
#include <gnuradio/io_signature.h>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace gr {
namespace largesc {

static loss_model build_model(const std::string& model,
                              double loss_rate,
                              double mean_burst,
                              uint64_t seed,
                              double p_gb,
                              double p_bg,
                              double loss_good,
                              double loss_bad,
                              const std::string& trace_file,
                              bool trace_repeat,
                              const std::vector<uint8_t>& trace)
{
    if (model == "bernoulli")
        return loss_model::bernoulli(loss_rate, seed);
    if (model == "gilbert_elliott")
        return loss_model::gilbert_elliott_mean(loss_rate, mean_burst, seed);
    if (model == "gilbert_elliott_raw")
        return loss_model::gilbert_elliott(p_gb, p_bg, loss_good, loss_bad, seed);
    if (model == "trace") {
        if (!trace_file.empty())
            return loss_model::trace_file(trace_file, trace_repeat);
        if (trace.empty())
            throw std::invalid_argument(
                "erasure_channel: model 'trace' needs trace_file, a text file of 0 "
                "(received) and 1 (lost) entries, or trace, the 0/1 pattern itself");
        return loss_model::trace(trace, trace_repeat);
    }
    throw std::invalid_argument("erasure_channel: unknown model '" + model +
                                "'; allowed: bernoulli, gilbert_elliott, "
                                "gilbert_elliott_raw, trace");
}

erasure_channel::sptr erasure_channel::make(const std::string& model,
                                            double loss_rate,
                                            double mean_burst,
                                            uint64_t seed,
                                            double p_gb,
                                            double p_bg,
                                            double loss_good,
                                            double loss_bad,
                                            const std::string& trace_file,
                                            bool trace_repeat,
                                            int stats_interval,
                                            const std::vector<uint8_t>& trace)
{
    if (stats_interval < 0)
        throw std::invalid_argument("erasure_channel: stats_interval must be >= 0 "
                                    "(0 = never publish), got " +
                                    std::to_string(stats_interval));
    // every parameter is checked, also those the chosen model ignores
    auto bad = [](const char* name, const char* want, double v) {
        std::ostringstream msg;
        msg << "erasure_channel: " << name << " must be " << want << ", got " << v;
        throw std::invalid_argument(msg.str());
    };
    const char* prob = "a probability in [0, 1]";
    if (!(loss_rate >= 0.0 && loss_rate <= 1.0))
        bad("loss_rate", prob, loss_rate);
    if (!(mean_burst >= 1.0 && mean_burst <= MAX_MEAN_BURST))
        bad("mean_burst",
            "a finite number in [1, 1e6] (mean lost packets per burst)",
            mean_burst);
    if (!(p_gb >= 0.0 && p_gb <= 1.0))
        bad("p_gb", prob, p_gb);
    if (!(p_bg >= 0.0 && p_bg <= 1.0))
        bad("p_bg", prob, p_bg);
    if (!(loss_good >= 0.0 && loss_good <= 1.0))
        bad("loss_good", prob, loss_good);
    if (!(loss_bad >= 0.0 && loss_bad <= 1.0))
        bad("loss_bad", prob, loss_bad);
    for (size_t i = 0; i < trace.size(); i++)
        if (trace[i] > 1)
            throw std::invalid_argument(
                "erasure_channel: trace entry " + std::to_string(i) +
                " must be 0 (received) or 1 (lost), got " + std::to_string(trace[i]));
    if (!trace_file.empty() && !trace.empty())
        throw std::invalid_argument(
            "erasure_channel: give trace_file or trace (the pattern "
            "itself), not both");
    loss_model m = [&]() {
        try {
            return build_model(model,
                               loss_rate,
                               mean_burst,
                               seed,
                               p_gb,
                               p_bg,
                               loss_good,
                               loss_bad,
                               trace_file,
                               trace_repeat,
                               trace);
        } catch (const std::invalid_argument& e) {
            const std::string w = e.what();
            if (w.rfind("erasure_channel:", 0) == 0)
                throw;
            throw std::invalid_argument("erasure_channel: " + w);
        }
    }();
    return gnuradio::make_block_sptr<erasure_channel_impl>(std::move(m), stats_interval);
}

erasure_channel_impl::erasure_channel_impl(loss_model model, int stats_interval)
    : gr::block("erasure_channel",
                gr::io_signature::make(0, 0, 0),
                gr::io_signature::make(0, 0, 0)),
      d_model(std::move(model)),
      d_stats_interval(stats_interval),
      d_out_port(pmt::mp("out")),
      d_stats_port(pmt::mp("stats"))
{
    message_port_register_in(pmt::mp("in"));
    message_port_register_out(d_out_port);
    message_port_register_out(d_stats_port);
    set_msg_handler(pmt::mp("in"), [this](const pmt::pmt_t& msg) { handle_msg(msg); });
}

erasure_channel_impl::~erasure_channel_impl() {}

void erasure_channel_impl::handle_msg(const pmt::pmt_t& msg)
{
    // Counters are updated only after the packet's fate is final and, for a
    // passed packet, after it is in the downstream queue: packets_in() counts
    // messages completely handled, so packets_in() <= passed + dropped +
    // rejected at any instant (equal between messages), and a caller that
    // sees every packet counted in knows none is still inside the channel
    // (see run_link).
    const bool is_pdu = pmt::is_pair(msg) && pmt::is_dict(pmt::car(msg)) &&
                        pmt::is_uniform_vector(pmt::cdr(msg));
    if (!is_pdu) {
        const uint64_t n_rej = ++d_rejected;
        if (n_rej == 1 || n_rej % 1000 == 0)
            d_logger->warn("dropped a message that is not a PDU (pair of dict and "
                           "uniform vector); {:d} rejected so far",
                           n_rej);
    } else {
        bool lost;
        {
            std::lock_guard<std::mutex> lock(d_mutex);
            lost = d_model.next();
        }
        if (lost) {
            d_dropped++;
            const uint64_t b = ++d_burst;
            if (b > d_longest)
                d_longest = b;
        } else {
            d_burst = 0;
            message_port_pub(d_out_port, msg);
            d_passed++;
        }
    }
    const uint64_t n_in = ++d_in;
    if (d_stats_interval > 0 && n_in % uint64_t(d_stats_interval) == 0)
        publish_stats();
}

void erasure_channel_impl::publish_stats()
{
    const uint64_t n_in = d_in, n_rej = d_rejected, n_drop = d_dropped;
    const uint64_t n_pdu = n_in - n_rej;
    pmt::pmt_t d = pmt::make_dict();
    d = pmt::dict_add(d, pmt::mp("packets_in"), pmt::from_uint64(n_in));
    d = pmt::dict_add(d, pmt::mp("packets_passed"), pmt::from_uint64(d_passed));
    d = pmt::dict_add(d, pmt::mp("packets_dropped"), pmt::from_uint64(n_drop));
    d = pmt::dict_add(d, pmt::mp("packets_rejected"), pmt::from_uint64(n_rej));
    d = pmt::dict_add(d, pmt::mp("current_burst"), pmt::from_uint64(d_burst));
    d = pmt::dict_add(d, pmt::mp("longest_burst"), pmt::from_uint64(d_longest));
    d = pmt::dict_add(d,
                      pmt::mp("measured_loss_rate"),
                      pmt::from_double(n_pdu ? double(n_drop) / n_pdu : 0.0));
    d = pmt::dict_add(d, pmt::mp("nominal_loss_rate"), pmt::from_double(loss_rate()));
    message_port_pub(d_stats_port, d);
}

void erasure_channel_impl::set_loss_rate(double loss_rate)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_model.set_loss_rate(loss_rate);
}

double erasure_channel_impl::loss_rate() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_model.mean_loss_rate();
}

double erasure_channel_impl::mean_burst() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_model.mean_burst_length();
}

std::string erasure_channel_impl::model() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_model.kind_name();
}

void erasure_channel_impl::reset_stats()
{
    d_in = 0;
    d_passed = 0;
    d_dropped = 0;
    d_rejected = 0;
    d_burst = 0;
    d_longest = 0;
}

} // namespace largesc
} // namespace gr
