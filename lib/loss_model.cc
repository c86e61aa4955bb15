/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <gnuradio/largesc/loss_model.h>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace gr {
namespace largesc {

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rng::seed_with(uint64_t seed)
{
    uint64_t z = seed;
    for (int i = 0; i < 4; i++) { // splitmix64
        z += 0x9E3779B97F4A7C15ULL;
        uint64_t x = z;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
        d_s[i] = x ^ (x >> 31);
    }
}

uint64_t rng::next_u64()
{
    const uint64_t result = rotl(d_s[1] * 5, 7) * 9;
    const uint64_t t = d_s[1] << 17;
    d_s[2] ^= d_s[0];
    d_s[3] ^= d_s[1];
    d_s[1] ^= d_s[2];
    d_s[0] ^= d_s[3];
    d_s[2] ^= t;
    d_s[3] = rotl(d_s[3], 45);
    return result;
}

burst_stats measure_bursts(const uint8_t* pattern, size_t n)
{
    burst_stats s;
    s.n_packets = n;
    uint64_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (pattern[i]) {
            s.n_lost++;
            if (run == 0)
                s.n_bursts++;
            run++;
            if (run > s.longest_burst)
                s.longest_burst = run;
        } else {
            run = 0;
        }
    }
    return s;
}

static void check_probability(const char* name, double v)
{
    if (!(v >= 0.0 && v <= 1.0)) {
        std::ostringstream msg;
        msg << name << " must be a probability in [0, 1], got " << v;
        throw std::invalid_argument(msg.str());
    }
}

loss_model loss_model::bernoulli(double loss_rate, uint64_t seed)
{
    check_probability("loss_rate", loss_rate);
    loss_model m;
    m.d_kind = BERNOULLI;
    m.d_seed = seed;
    m.d_loss_rate = loss_rate;
    m.init_state();
    return m;
}

loss_model loss_model::gilbert_elliott(
    double p_gb, double p_bg, double loss_good, double loss_bad, uint64_t seed)
{
    check_probability("p_gb (Good->Bad transition probability)", p_gb);
    check_probability("p_bg (Bad->Good transition probability)", p_bg);
    check_probability("loss_good (loss probability in the Good state)", loss_good);
    check_probability("loss_bad (loss probability in the Bad state)", loss_bad);
    if (p_gb + p_bg <= 0.0)
        throw std::invalid_argument(
            "Gilbert-Elliott: p_gb and p_bg cannot both be 0 (the chain would never "
            "move and has no stationary loss rate); set at least one above 0");
    loss_model m;
    m.d_kind = GILBERT_ELLIOTT;
    m.d_seed = seed;
    m.d_p_gb = p_gb;
    m.d_p_bg = p_bg;
    m.d_loss_good = loss_good;
    m.d_loss_bad = loss_bad;
    m.init_state();
    return m;
}

static void
gilbert_from_mean(double loss_rate, double mean_burst, double& p_gb, double& p_bg)
{
    check_probability("loss_rate", loss_rate);
    if (!(mean_burst >= 1.0) || std::isinf(mean_burst)) {
        std::ostringstream msg;
        msg << "mean_burst (mean number of consecutive lost packets) must be a finite "
               "number >= 1, got "
            << mean_burst;
        throw std::invalid_argument(msg.str());
    }
    if (loss_rate >= 1.0)
        throw std::invalid_argument(
            "Gilbert-Elliott with a mean burst length needs loss_rate < 1 (a channel "
            "that loses everything has no finite burst); use the bernoulli model "
            "with loss_rate 1");
    p_bg = 1.0 / mean_burst;
    p_gb = loss_rate * p_bg / (1.0 - loss_rate);
    if (p_gb > 1.0 + 1e-12) {
        std::ostringstream msg;
        msg << "Gilbert-Elliott: loss_rate " << loss_rate << " with mean_burst "
            << mean_burst << " is impossible (bursts that short cannot cover that "
            << "much loss); need mean_burst >= loss_rate/(1-loss_rate) = "
            << loss_rate / (1.0 - loss_rate);
        throw std::invalid_argument(msg.str());
    }
    if (p_gb > 1.0)
        p_gb = 1.0;
}

loss_model
loss_model::gilbert_elliott_mean(double loss_rate, double mean_burst, uint64_t seed)
{
    double p_gb, p_bg;
    gilbert_from_mean(loss_rate, mean_burst, p_gb, p_bg);
    return gilbert_elliott(p_gb, p_bg, 0.0, 1.0, seed);
}

loss_model loss_model::trace(const std::vector<uint8_t>& pattern, bool repeat)
{
    if (pattern.empty())
        throw std::invalid_argument("loss trace is empty: give at least one 0 or 1");
    for (size_t i = 0; i < pattern.size(); i++)
        if (pattern[i] > 1)
            throw std::invalid_argument("loss trace entry " + std::to_string(i) + " is " +
                                        std::to_string(pattern[i]) +
                                        ": entries must be 0 (received) or 1 (lost)");
    loss_model m;
    m.d_kind = TRACE;
    m.d_trace = pattern;
    m.d_repeat = repeat;
    m.init_state();
    return m;
}

std::vector<uint8_t> loss_model::read_trace_file(const std::string& path)
{
    std::ifstream f(path);
    if (!f)
        throw std::runtime_error("cannot read loss trace file '" + path +
                                 "': it does not exist or is not readable");
    std::vector<uint8_t> out;
    std::string line;
    size_t lineno = 0;
    while (std::getline(f, line)) {
        lineno++;
        for (size_t col = 0; col < line.size(); col++) {
            const char c = line[col];
            if (c == '#')
                break;
            if (c == '0' || c == '1')
                out.push_back(uint8_t(c - '0'));
            else if (c == ' ' || c == '\t' || c == ',' || c == '\r')
                continue;
            else
                throw std::runtime_error(
                    "malformed loss trace file '" + path + "' line " +
                    std::to_string(lineno) + " column " + std::to_string(col + 1) +
                    ": unexpected character '" + std::string(1, c) +
                    "' (allowed: 0 = received, 1 = lost, spaces, commas, # comments)");
        }
    }
    if (out.empty())
        throw std::runtime_error("loss trace file '" + path + "' holds no 0/1 entries");
    return out;
}

loss_model loss_model::trace_file(const std::string& path, bool repeat)
{
    return trace(read_trace_file(path), repeat);
}

void loss_model::init_state()
{
    d_rng.seed_with(d_seed);
    d_pos = 0;
    d_bad = false;
    if (d_kind == GILBERT_ELLIOTT) {
        const double pi_bad = d_p_gb / (d_p_gb + d_p_bg);
        d_bad = d_rng.uniform() < pi_bad;
    }
}

void loss_model::reset() { init_state(); }

bool loss_model::next()
{
    switch (d_kind) {
    case BERNOULLI:
        return d_rng.uniform() < d_loss_rate;
    case GILBERT_ELLIOTT: {
        const double l = d_bad ? d_loss_bad : d_loss_good;
        const bool lost = l >= 1.0 ? true : (l <= 0.0 ? false : d_rng.uniform() < l);
        const double u = d_rng.uniform();
        d_bad = d_bad ? !(u < d_p_bg) : (u < d_p_gb);
        return lost;
    }
    case TRACE:
    default:
        if (d_pos >= d_trace.size()) {
            if (!d_repeat)
                return false;
            d_pos = 0;
        }
        return d_trace[d_pos++] != 0;
    }
}

void loss_model::fill(uint8_t* out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = next() ? 1 : 0;
}

std::vector<uint8_t> loss_model::pattern(size_t n)
{
    std::vector<uint8_t> out(n);
    fill(out.data(), n);
    return out;
}

void loss_model::set_loss_rate(double loss_rate)
{
    switch (d_kind) {
    case BERNOULLI:
        check_probability("loss_rate", loss_rate);
        d_loss_rate = loss_rate;
        break;
    case GILBERT_ELLIOTT: {
        double burst = mean_burst_length();
        if (!std::isfinite(burst) || burst < 1.0)
            burst = 1.0;
        check_probability("loss_rate", loss_rate);
        // keep the burst length; cap the rate at what that burst length allows
        const double cap = burst / (1.0 + burst);
        double p_gb, p_bg;
        gilbert_from_mean(std::min(loss_rate, cap), burst, p_gb, p_bg);
        d_p_gb = p_gb;
        d_p_bg = p_bg;
        d_loss_good = 0.0;
        d_loss_bad = 1.0;
        break;
    }
    case TRACE:
    default:
        throw std::invalid_argument(
            "set_loss_rate: the trace model's loss is fixed by its trace");
    }
}

std::string loss_model::kind_name() const
{
    switch (d_kind) {
    case BERNOULLI:
        return "bernoulli";
    case GILBERT_ELLIOTT:
        return "gilbert_elliott";
    default:
        return "trace";
    }
}

double loss_model::mean_loss_rate() const
{
    switch (d_kind) {
    case BERNOULLI:
        return d_loss_rate;
    case GILBERT_ELLIOTT: {
        const double pi_bad = d_p_gb / (d_p_gb + d_p_bg);
        return (1.0 - pi_bad) * d_loss_good + pi_bad * d_loss_bad;
    }
    default: {
        size_t lost = 0;
        for (auto v : d_trace)
            lost += v;
        return double(lost) / d_trace.size();
    }
    }
}

double loss_model::mean_burst_length() const
{
    switch (d_kind) {
    case BERNOULLI:
        return d_loss_rate >= 1.0 ? std::numeric_limits<double>::infinity()
                                  : 1.0 / (1.0 - d_loss_rate);
    case GILBERT_ELLIOTT: {
        // mean run length = P(loss) / P(previous packet received, this one lost)
        const double pi_b = d_p_gb / (d_p_gb + d_p_bg);
        const double pi[2] = { 1.0 - pi_b, pi_b };
        const double l[2] = { d_loss_good, d_loss_bad };
        const double P[2][2] = { { 1.0 - d_p_gb, d_p_gb }, { d_p_bg, 1.0 - d_p_bg } };
        double start = 0.0;
        for (int s = 0; s < 2; s++)
            for (int t = 0; t < 2; t++)
                start += pi[s] * (1.0 - l[s]) * P[s][t] * l[t];
        const double loss = pi[0] * l[0] + pi[1] * l[1];
        if (loss <= 0.0)
            return 0.0;
        return start > 0.0 ? loss / start : std::numeric_limits<double>::infinity();
    }
    default: {
        // the trace as a cycle when repeated, as is otherwise
        const burst_stats s = measure_bursts(d_trace.data(), d_trace.size());
        return s.mean_burst();
    }
    }
}

} // namespace largesc
} // namespace gr
