/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <gnuradio/largesc/bitpack.h>
#include <gnuradio/largesc/crc.h>
#include <gnuradio/largesc/uep_packet.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace gr {
namespace largesc {

size_t packet_size(const packet_header& h)
{
    return HEADER_BYTES + (h.n_tokens() * TOKEN_BITS + 7) / 8 + (h.crc ? CRC_BYTES : 0);
}

const char* parse_status_name(parse_status s)
{
    switch (s) {
    case parse_status::OK:
        return "ok";
    case parse_status::TOO_SHORT:
        return "too_short";
    case parse_status::BAD_VERSION:
        return "bad_version";
    case parse_status::BAD_LENGTH:
        return "bad_length";
    case parse_status::BAD_PADDING:
        return "bad_padding";
    case parse_status::BAD_CRC:
        return "bad_crc";
    }
    return "unknown";
}

std::vector<uint8_t>
build_packet(const packet_header& h, const uint16_t* tokens, size_t n_tokens)
{
    std::vector<uint8_t> out;
    build_packet_into(h, tokens, n_tokens, out);
    return out;
}

void build_packet_into(const packet_header& h,
                       const uint16_t* tokens,
                       size_t n_tokens,
                       std::vector<uint8_t>& out)
{
    if (h.k < 1 || h.k > MAX_CODEBOOKS)
        throw std::invalid_argument("primary codebooks K must be in 1..32, got " +
                                    std::to_string(h.k));
    for (unsigned d = 0; d < MAX_COPY_OFFSET; d++)
        if (h.r[d] > MAX_COPIES)
            throw std::invalid_argument("copies r" + std::to_string(d + 1) +
                                        " must be in 0..15, got " +
                                        std::to_string(h.r[d]));
    if (n_tokens != h.n_tokens())
        throw std::invalid_argument("header announces " + std::to_string(h.n_tokens()) +
                                    " tokens, got " + std::to_string(n_tokens));
    out.clear();
    out.reserve(packet_size(h));
    out.push_back(h.seq);
    out.push_back(uint8_t((PACKET_VERSION << 6) | (h.crc ? 0x20 : 0) | (h.k - 1)));
    out.push_back(uint8_t((h.r[0] << 4) | h.r[1]));
    {
        bit_writer w(out);
        for (size_t i = 0; i < n_tokens; i++) {
            if (tokens[i] > MAX_TOKEN)
                throw std::invalid_argument("token " + std::to_string(i) + " = " +
                                            std::to_string(tokens[i]) +
                                            " is not an 11-bit token (0..2047)");
            w.put(tokens[i], TOKEN_BITS);
        }
        w.flush();
    }
    if (h.crc) {
        const uint16_t c = crc16(out.data(), out.size());
        out.push_back(uint8_t(c >> 8));
        out.push_back(uint8_t(c & 0xFF));
    }
}

parse_status parse_header(const uint8_t* data, size_t len, packet_header& h)
{
    if (len < HEADER_BYTES)
        return parse_status::TOO_SHORT;
    if ((data[1] >> 6) != PACKET_VERSION)
        return parse_status::BAD_VERSION;
    h.seq = data[0];
    h.crc = (data[1] & 0x20) != 0;
    h.k = uint8_t((data[1] & 0x1F) + 1);
    h.r[0] = uint8_t(data[2] >> 4);
    h.r[1] = uint8_t(data[2] & 0x0F);
    return parse_status::OK;
}

parse_status parse_packet(const uint8_t* data,
                          size_t len,
                          packet_header& h,
                          std::vector<uint16_t>& tokens)
{
    const parse_status hs = parse_header(data, len, h);
    if (hs != parse_status::OK)
        return hs;
    if (len != packet_size(h))
        return parse_status::BAD_LENGTH;
    if (h.crc) {
        const uint16_t want = uint16_t((data[len - 2] << 8) | data[len - 1]);
        if (crc16(data, len - CRC_BYTES) != want)
            return parse_status::BAD_CRC;
    }
    const size_t n = h.n_tokens();
    const size_t payload = len - HEADER_BYTES - (h.crc ? CRC_BYTES : 0);
    bit_reader r(data + HEADER_BYTES, payload);
    tokens.resize(n);
    for (size_t i = 0; i < n; i++)
        tokens[i] = uint16_t(r.get(TOKEN_BITS));
    const size_t pad = r.bits_left();
    if (pad && r.get(unsigned(pad)) != 0)
        return parse_status::BAD_PADDING;
    return parse_status::OK;
}

// ---------------------------------------------------------------- packetizer

const std::vector<uint8_t>& packetizer_core::packetize(uint64_t frame,
                                                       const uint16_t* tokens,
                                                       size_t n_q,
                                                       unsigned k,
                                                       unsigned r1,
                                                       unsigned r2)
{
    if (n_q < 1 || n_q > MAX_CODEBOOKS)
        throw std::invalid_argument("a token frame has 1..32 tokens, got " +
                                    std::to_string(n_q));
    if (k < 1 || k > n_q)
        throw std::invalid_argument("primary codebooks K must be in 1..n_q (" +
                                    std::to_string(n_q) + "), got " + std::to_string(k));
    for (size_t i = 0; i < n_q; i++)
        if (tokens[i] > MAX_TOKEN)
            throw std::invalid_argument("token " + std::to_string(i) + " = " +
                                        std::to_string(tokens[i]) +
                                        " is not an 11-bit token (0..2047)");
    // a restart or a jump back in frame numbering forgets the history
    if (d_n_hist && frame <= d_hist[0].frame)
        d_n_hist = 0;

    packet_header h;
    h.seq = uint8_t(frame & 0xFF);
    h.crc = d_crc;
    h.k = uint8_t(k);
    const unsigned want[MAX_COPY_OFFSET] = { r1, r2 };
    std::copy(tokens, tokens + k, d_tok.begin());
    size_t n_tok = k;
    for (unsigned d = 1; d <= MAX_COPY_OFFSET; d++) {
        unsigned r = std::min(want[d - 1], MAX_COPIES);
        const past_frame* src = nullptr;
        for (unsigned i = 0; i < d_n_hist; i++)
            if (d_hist[i].frame + d == frame)
                src = &d_hist[i];
        r = src ? std::min(r, src->n_q) : 0;
        h.r[d - 1] = uint8_t(r);
        if (r) {
            std::copy(
                src->tokens.begin(), src->tokens.begin() + r, d_tok.begin() + n_tok);
            n_tok += r;
        }
    }
    d_hist[1] = d_hist[0];
    d_hist[0].frame = frame;
    d_hist[0].n_q = unsigned(n_q);
    std::copy(tokens, tokens + n_q, d_hist[0].tokens.begin());
    d_n_hist = std::min<unsigned>(d_n_hist + 1, MAX_COPY_OFFSET);
    d_last = h;
    build_packet_into(h, d_tok.data(), n_tok, d_packet);
    return d_packet;
}

frame_placement packetizer_core::place_frame(uint64_t frame)
{
    frame_placement at;
    at.placed = true;
    at.pos = frame;
    if (!d_numbered)
        return at;
    const uint64_t step = frame - d_last_frame; // wraps for frame < d_last_frame
    if (frame > d_last_frame && step <= MAX_FRAME_JUMP) {
        at.pos = d_last_pos + step;
    } else if (d_have_cand && frame == d_cand + 1) {
        at.pos = d_last_pos + 1;
        at.restart = true;
    } else {
        d_have_cand = true;
        d_cand = frame;
        at.placed = false;
    }
    return at;
}

const std::vector<uint8_t>& packetizer_core::packetize_placed(uint64_t frame,
                                                              const frame_placement& at,
                                                              const uint16_t* tokens,
                                                              size_t n_q,
                                                              unsigned k,
                                                              unsigned r1,
                                                              unsigned r2)
{
    if (!at.placed)
        throw std::invalid_argument("frame " + std::to_string(frame) +
                                    " was refused by the frame-numbering rule");
    if (at.restart)
        reset(); // no copies of the old numbering's frames
    const std::vector<uint8_t>& packet = packetize(at.pos, tokens, n_q, k, r1, r2);
    d_have_cand = false;
    d_numbered = true;
    d_last_frame = frame;
    d_last_pos = at.pos;
    return packet;
}

// -------------------------------------------------------------- depacketizer

depacketizer_core::depacketizer_core(unsigned delay,
                                     unsigned default_n_q,
                                     unsigned feedback_window,
                                     unsigned restart_gap,
                                     bool require_crc)
    : d_delay(delay),
      d_default_n_q(default_n_q),
      d_window(feedback_window),
      d_restart_gap(restart_gap),
      d_require_crc(require_crc),
      d_last_k(default_n_q),
      d_ring(256)
{
    if (delay > MAX_COPY_OFFSET)
        throw std::invalid_argument("playout delay must be 0..2 frames (copies reach "
                                    "back at most 2 frames), got " +
                                    std::to_string(delay));
    if (default_n_q < 1 || default_n_q > MAX_CODEBOOKS)
        throw std::invalid_argument("default_n_q must be in 1..32, got " +
                                    std::to_string(default_n_q));
    if (feedback_window < 1)
        throw std::invalid_argument("feedback_window must be >= 1 packet");
    if (restart_gap < 2 * MAX_COPY_OFFSET + 1 || restart_gap > 120)
        throw std::invalid_argument("restart_gap must be in 5..120 frames, got " +
                                    std::to_string(restart_gap));
}

void depacketizer_core::reset()
{
    flush(); // exactly one frame per index: the pending frames are played out first
    d_started = false;
    d_next = d_newest = 0;
    d_last_k = d_default_n_q;
    for (auto& s : d_ring)
        s.frame = -1;
    d_fates.clear();
    d_behind_run = 0;
    d_behind_last_seq = -1;
    d_seq_offset = 0;
    d_have_t = false;
    d_arrival.clear();
}

void depacketizer_core::reject_not_pdu()
{
    d_cnt.packets_in++;
    d_cnt.malformed++;
    d_cnt.not_pdu++;
    d_behind_run = 0; // not a valid packet: breaks a restart run
    break_run();
}

depacketizer_core::slot& depacketizer_core::slot_for(int64_t frame)
{
    slot& s = d_ring[size_t(frame) & 0xFF];
    if (s.frame != frame) {
        s.frame = frame;
        s.tokens.clear();
        s.mask.clear();
        s.primary = false;
        s.k = 0;
        s.rx_time = std::nan("");
    }
    return s;
}

void depacketizer_core::emit_until(int64_t last, double play_time)
{
    for (; d_next <= last; d_next++) {
        slot& s = slot_for(d_next);
        if (d_n_ready == d_ready.size())
            d_ready.emplace_back();
        rx_frame& f = d_ready[d_n_ready++];
        f.frame = uint64_t(d_next);
        f.primary = s.primary;
        f.rx_time = s.rx_time;
        f.play_time = play_time - double(last - d_next) * FRAME_SECONDS; // its own slot
        // width: the frame's own K (or the last K seen), widened by any copies
        const unsigned n_q =
            std::max<unsigned>(s.primary ? s.k : d_last_k, unsigned(s.tokens.size()));
        if (s.primary)
            d_last_k = s.k;
        f.tokens.assign(n_q, 0);
        f.mask.assign(n_q, 0);
        const size_t have = std::min<size_t>(n_q, s.tokens.size());
        std::copy(s.tokens.begin(), s.tokens.begin() + have, f.tokens.begin());
        std::copy(s.mask.begin(), s.mask.begin() + have, f.mask.begin());
        bool any = false;
        for (auto m : f.mask)
            any |= m != 0;
        d_cnt.frames_out++;
        d_cnt.frames_primary += s.primary;
        d_cnt.frames_empty += !any;
        d_fates.push_back(s.primary ? 0 : 1);
        while (d_fates.size() > d_window)
            d_fates.pop_front();
        s.frame = -1; // free the slot
    }
}

// A frame past the newest becomes the newest; the clock anchor (arrival time of
// the newest frame's packet) moves with it. Returns true if it did.
bool depacketizer_core::advance_newest(int64_t frame)
{
    if (frame <= d_newest)
        return false;
    d_newest = frame;
    d_have_t = std::isfinite(d_t_cur);
    d_t_newest = d_t_cur;
    return true;
}

void depacketizer_core::accept(int64_t frame,
                               const packet_header& h,
                               const std::vector<uint16_t>& tok)
{
    if (frame < d_next) { // already played out (by the playout clock): too late, but
        if (advance_newest(frame)) // the numbering and the clock anchor follow it
            note_arrival(frame);   // the playout clock learns how late it came
        d_cnt.late++;
        return;
    }
    if (frame - d_next >= int64_t(d_ring.size())) // a gap by time longer than the ring:
        emit_until(frame - 1 - int64_t(MAX_COPY_OFFSET)); // its frames leave lost first
    advance_newest(frame);
    slot& s = slot_for(frame);
    if (s.primary) {
        d_cnt.duplicates++;
    } else { // the own packet writes its K tokens, also over tokens copies wrote
        d_cnt.packets_accepted++;
        note_arrival(frame);
        if (!std::isfinite(s.rx_time))
            s.rx_time = d_t_cur;
        s.primary = true;
        s.k = h.k;
        if (s.tokens.size() < h.k) {
            s.tokens.resize(h.k, 0);
            s.mask.resize(h.k, 0);
        }
        std::copy(tok.begin(), tok.begin() + h.k, s.tokens.begin());
        std::fill(s.mask.begin(), s.mask.begin() + h.k, 1);
        size_t pos = h.k;
        for (unsigned d = 1; d <= MAX_COPY_OFFSET; d++) {
            const unsigned r = h.r[d - 1];
            const int64_t target = frame - int64_t(d);
            if (r && target >= d_next) {
                slot& t = slot_for(target);
                if (t.tokens.size() < r) {
                    t.tokens.resize(r, 0);
                    t.mask.resize(r, 0);
                }
                if (!std::isfinite(t.rx_time))
                    t.rx_time = d_t_cur;
                for (unsigned c = 0; c < r; c++) {
                    if (!t.mask[c]) { // a copy never overwrites a received token
                        t.tokens[c] = tok[pos + c];
                        t.mask[c] = 1;
                        d_cnt.tokens_from_copies++;
                    }
                }
            }
            pos += r;
        }
    }
    if (!(d_clocked && std::isfinite(d_t_cur))) // a playout clock plays timed frames
        emit_until(d_newest - int64_t(d_delay));
}

// Parses a packet into h and d_tok (reused: no allocation per packet); counts
// it as malformed (and why) unless OK.
parse_status
depacketizer_core::parse_checked(const uint8_t* data, size_t len, packet_header& h)
{
    parse_status st = parse_packet(data, len, h, d_tok);
    if (st == parse_status::OK && d_require_crc && !h.crc)
        st = parse_status::BAD_CRC; // the link uses CRCs: a packet without one is junk
    if (st != parse_status::OK)
        count_malformed(st);
    return st;
}

// A malformed packet also breaks a run of packets behind the playout point.
void depacketizer_core::count_malformed(parse_status st)
{
    d_behind_run = 0;
    break_run();
    d_cnt.malformed++;
    switch (st) {
    case parse_status::TOO_SHORT:
        d_cnt.too_short++;
        break;
    case parse_status::BAD_VERSION:
        d_cnt.bad_version++;
        break;
    case parse_status::BAD_LENGTH:
        d_cnt.bad_length++;
        break;
    case parse_status::BAD_PADDING:
        d_cnt.bad_padding++;
        break;
    default:
        d_cnt.bad_crc++;
    }
}

// The first valid packet: numbering starts at its seq.
void depacketizer_core::start(const packet_header& h)
{
    d_started = true;
    d_seq_offset = 0;
    d_newest = h.seq;
    // play out from the oldest frame this packet carries tokens of
    const unsigned depth = h.r[1] ? 2 : (h.r[0] ? 1 : 0);
    d_next = std::max<int64_t>(0, int64_t(h.seq) - depth);
    d_have_t = std::isfinite(d_t_cur);
    d_t_newest = d_t_cur;
    accept(h.seq, h, d_tok);
}

// A packet held as a suspect jump is confirmed or dropped by this one. Returns
// false when this packet is a duplicate of the held one (nothing more to do).
bool depacketizer_core::settle_held(const packet_header& h)
{
    d_held = false;
    const uint8_t hseq = uint8_t(h.seq + d_seq_offset);
    const int dh = int(int8_t(uint8_t(hseq - uint8_t(d_held_frame & 0xFF))));
    if (dh == 0) { // the same frame again: the held packet stays held
        d_held = true;
        d_cnt.duplicates++;
        return false;
    }
    if (dh >= 1) { // ahead of the held packet: the jump is confirmed
        accept(d_held_frame, d_held_hdr, d_held_tok);
    } else { // not confirmed: a corrupted header
        d_cnt.malformed++;
        d_cnt.bad_seq++;
    }
    return true;
}

// Holds a packet too far ahead until the next packet confirms it.
void depacketizer_core::hold(int64_t frame, const packet_header& h)
{
    d_behind_run = 0;
    d_held = true;
    d_held_frame = frame;
    d_held_hdr = h;
    d_held_tok.assign(d_tok.begin(), d_tok.end());
}

// A packet behind the playout point: late, or the one that completes a run of
// RESTART_RUN consecutive packets far behind (a transmitter restart).
void depacketizer_core::take_behind(int64_t frame, const packet_header& h)
{
    if (d_next - frame > int64_t(d_restart_gap)) {
        const bool consecutive =
            d_behind_last_seq >= 0 && uint8_t(d_behind_last_seq + 1) == h.seq;
        d_behind_run = consecutive ? d_behind_run + 1 : 1;
        d_behind_last_seq = h.seq;
        // transmitter restart: continue numbering after what we have
        if (d_behind_run >= RESTART_RUN) {
            d_cnt.restarts++;
            d_behind_run = 0;
            emit_until(d_newest);
            d_newest = d_next; // this packet becomes frame d_next
            d_seq_offset = uint8_t((d_next & 0xFF) - h.seq);
            accept(d_next, h, d_tok);
            return;
        }
    } else {
        d_behind_run = 0;
    }
    d_cnt.late++;
}

parse_status depacketizer_core::push(const uint8_t* data, size_t len)
{
    return push(data, len, std::nan(""));
}

// True if t is an arrival time that can be set against the newest frame's.
bool depacketizer_core::timed(double t) const
{
    return d_have_t && std::isfinite(t) && t >= d_t_newest &&
           t - d_t_newest <= MAX_TIME_GAP;
}

// Counts the packets of a timed restart run that did not complete as late.
void depacketizer_core::break_run()
{
    d_cnt.late += d_run.size();
    d_run.clear();
}

// A packet that does not continue the numbering by seq (far ahead or behind the
// playout point), set against the frame its arrival time names: within
// TIME_TOLERANCE it continues the numbering across a silence (accepted at once:
// the clock confirms the jump, the silence is played out as lost frames);
// further off it belongs to a new numbering, taken when RESTART_RUN packets in a
// row say so (a transmitter restart), each at the frame its time names.
void depacketizer_core::take_by_time(const packet_header& h, int64_t expected)
{
    const uint8_t seq = uint8_t(h.seq + d_seq_offset);
    const int d = int(int8_t(uint8_t(seq - uint8_t(expected & 0xFF))));
    const int64_t frame = expected + d;
    if (std::abs(d) <= TIME_TOLERANCE) {
        break_run();
        d_behind_run = 0;
        if (frame > d_newest)
            accept(frame, h, d_tok);
        else
            d_cnt.late++; // behind, where its time puts it too
        return;
    }
    d_behind_run = 0;
    if (!d_run.empty() && uint8_t(d_run.back().hdr.seq + 1) != h.seq)
        break_run(); // not consecutive: a new run starts with this packet
    d_run.push_back(run_packet{ h, d_tok, expected });
    if (d_run.size() < size_t(RESTART_RUN))
        return;
    // transmitter restart: the old numbering's frames are played out, the run's
    // first packet lands where its time puts it (after the newest frame), the
    // silence in between is played out as lost frames
    d_cnt.restarts++;
    emit_until(d_newest);
    const int64_t first = std::max(d_run[0].expected, d_newest + 1);
    d_seq_offset = uint8_t((first & 0xFF) - d_run[0].hdr.seq);
    std::vector<run_packet> run;
    run.swap(d_run);
    for (size_t i = 0; i < run.size(); i++)
        accept(first + int64_t(i), run[i].hdr, run[i].tok);
}

parse_status depacketizer_core::push(const uint8_t* data, size_t len, double rx_time)
{
    d_t_cur = rx_time;
    d_cnt.packets_in++;
    packet_header h;
    const parse_status st = parse_checked(data, len, h);
    if (st != parse_status::OK)
        return st;
    if (!d_started) {
        start(h);
        return st;
    }
    if (d_held && !settle_held(h))
        return st;
    // this packet is then taken against the newest frame, as any other:
    // unwrap against the newest frame: -128..127
    const uint8_t seq = uint8_t(h.seq + d_seq_offset);
    const int delta = int(int8_t(uint8_t(seq - uint8_t(d_newest & 0xFF))));
    const int64_t frame = d_newest + delta;
    const bool by_seq =
        (delta >= 1 && delta <= MAX_UNCONFIRMED_JUMP) || (delta <= 0 && frame >= d_next);
    if (!by_seq && timed(rx_time)) {
        take_by_time(h, d_newest + std::llround((rx_time - d_t_newest) / FRAME_SECONDS));
        return st;
    }
    break_run();
    if (delta > MAX_UNCONFIRMED_JUMP) { // hold until the next packet confirms it
        hold(frame, h);
        return st;
    }
    if (frame >= d_next || delta >= 1) { // ahead of the newest: accepted, or late if the
        d_behind_run = 0;                // playout clock already played its frame
        accept(frame, h, d_tok);
        return st;
    }
    take_behind(frame, h);
    return st;
}

std::vector<rx_frame> depacketizer_core::pop()
{
    std::vector<rx_frame> out(d_ready.begin(), d_ready.begin() + d_n_ready);
    d_n_ready = 0;
    return out;
}

void depacketizer_core::flush()
{
    d_cnt.flushes++;
    if (d_held) { // nothing can confirm it any more
        d_held = false;
        d_cnt.malformed++;
        d_cnt.bad_seq++;
    }
    break_run(); // an incomplete restart run: its packets are late
    if (d_started)
        emit_until(d_newest);
}

void depacketizer_core::play_until(int64_t frame, double play_time)
{
    if (d_started)
        emit_until(frame, play_time);
}

int64_t depacketizer_core::play_arrived(int64_t last, double play_time)
{
    if (!d_started)
        return -1;
    int64_t m = d_next - 1;
    while (m < last) {
        const slot& s = d_ring[size_t(m + 1) & 0xFF];
        if (s.frame != m + 1 || !s.primary)
            break;
        m++;
    }
    if (m < d_next)
        return -1;
    emit_until(m, play_time - double(last - m) * FRAME_SECONDS);
    return m;
}

double depacketizer_core::newest_rx_time() const
{
    return d_have_t ? d_t_newest : std::nan("");
}

void depacketizer_core::note_arrival(int64_t frame)
{
    if (!std::isfinite(d_t_cur))
        return;
    d_arrival.push_back(d_t_cur - double(frame) * FRAME_SECONDS);
    while (d_arrival.size() > d_window)
        d_arrival.pop_front();
}

double depacketizer_core::arrival_ref(double q, size_t last) const
{
    if (d_arrival.empty() || !(q >= 0.0 && q <= 1.0))
        return std::nan("");
    const size_t n = last ? std::min(last, d_arrival.size()) : d_arrival.size();
    std::vector<double> v(d_arrival.end() - std::ptrdiff_t(n), d_arrival.end());
    const size_t k = size_t(q * double(v.size() - 1) + 0.5);
    std::nth_element(v.begin(), v.begin() + k, v.end());
    return v[k];
}

burst_stats depacketizer_core::window_stats() const
{
    std::vector<uint8_t> v(d_fates.begin(), d_fates.end());
    return measure_bursts(v.data(), v.size());
}

// ----------------------------------------------------------- token-level sim

void simulate_uep(const int32_t* k,
                  const int32_t* copies,
                  size_t D,
                  const uint8_t* lost,
                  size_t n_frames,
                  size_t n_codebooks,
                  uint8_t* mask)
{
    if (D > MAX_COPY_OFFSET)
        throw std::invalid_argument("simulate_uep: D must be 0..2");
    std::fill(mask, mask + n_frames * n_codebooks, 0);
    for (size_t f = 0; f < n_frames; f++) {
        if (lost[f])
            continue;
        uint8_t* row = mask + f * n_codebooks;
        const size_t kk = std::min<size_t>(size_t(std::max(k[f], 0)), n_codebooks);
        std::fill(row, row + kk, 1);
        for (size_t d = 1; d <= D && d <= f; d++) {
            const size_t r =
                std::min<size_t>(size_t(std::max(copies[f * D + d - 1], 0)), n_codebooks);
            uint8_t* prow = mask + (f - d) * n_codebooks;
            std::fill(prow, prow + r, 1);
        }
    }
}

uint64_t run_packet_path(const uint16_t* tokens,
                         size_t n_q,
                         const int32_t* k,
                         const int32_t* copies,
                         size_t D,
                         const uint8_t* lost,
                         size_t n_frames,
                         unsigned delay,
                         bool crc,
                         uint16_t* tokens_out,
                         uint8_t* mask_out)
{
    if (D > MAX_COPY_OFFSET)
        throw std::invalid_argument("run_packet_path: D must be 0..2");
    packetizer_core tx(crc);
    depacketizer_core rx(delay, unsigned(std::min<size_t>(n_q, MAX_CODEBOOKS)));
    std::fill(tokens_out, tokens_out + n_frames * MAX_CODEBOOKS, 0);
    std::fill(mask_out, mask_out + n_frames * MAX_CODEBOOKS, 0);
    uint64_t bytes = 0;
    auto drain = [&]() {
        rx.drain([&](const rx_frame& f) {
            if (f.frame >= n_frames)
                return;
            const size_t w = std::min<size_t>(f.tokens.size(), MAX_CODEBOOKS);
            std::copy(f.tokens.begin(),
                      f.tokens.begin() + w,
                      tokens_out + f.frame * MAX_CODEBOOKS);
            std::copy(
                f.mask.begin(), f.mask.begin() + w, mask_out + f.frame * MAX_CODEBOOKS);
        });
    };
    for (size_t f = 0; f < n_frames; f++) {
        const unsigned r1 = D >= 1 ? unsigned(std::max(copies[f * D], 0)) : 0;
        const unsigned r2 = D >= 2 ? unsigned(std::max(copies[f * D + 1], 0)) : 0;
        const auto pkt =
            tx.packetize(f, tokens + f * n_q, n_q, unsigned(std::max(k[f], 0)), r1, r2);
        bytes += pkt.size();
        if (!lost[f]) {
            rx.push(pkt.data(), pkt.size());
            drain();
        }
    }
    rx.flush();
    drain();
    return bytes;
}

} // namespace largesc
} // namespace gr
