/* -*- c++ -*- */
/*
 * Copyright 2026 gr-largesc authors.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_LARGESC_UEP_PACKET_H
#define INCLUDED_LARGESC_UEP_PACKET_H

#include <gnuradio/largesc/api.h>
#include <gnuradio/largesc/loss_model.h>
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <string>
#include <vector>

namespace gr {
namespace largesc {

/*
 * In-band UEP packet format (byte-exact specification: docs/packet_format.md).
 *
 *  byte 0: seq         frame index mod 256
 *  byte 1: [7:6] version (01), [5] CRC flag, [4:0] K-1 (primary codebooks 1..32)
 *  byte 2: [7:4] r1 (codebooks of frame n-1 copied, 0..15), [3:0] r2 (frame n-2)
 *  payload: K tokens of frame n, r1 of frame n-1, r2 of frame n-2, 11 bits each,
 *           MSB first, zero-padded to a byte
 *  trailer: CRC-16/CCITT-FALSE over header + payload, big-endian (CRC flag only)
 */
constexpr unsigned TOKEN_BITS = 11;
constexpr unsigned MAX_TOKEN = 2047;
constexpr unsigned MAX_CODEBOOKS = 32;
constexpr unsigned MAX_COPY_OFFSET = 2;
constexpr unsigned MAX_COPIES = 15;
constexpr unsigned HEADER_BYTES = 3;
constexpr unsigned CRC_BYTES = 2;
constexpr unsigned PACKET_VERSION = 1;
//! Largest jump ahead in frame numbering a packet can express (seq is 8 bits and
//! the receiver unwraps it to -128..+127 around the newest frame).
constexpr uint64_t MAX_FRAME_JUMP = 127;
//! A receiver takes a packet up to this many frames ahead of the newest frame at
//! once; one further ahead is held until the next packet confirms the jump.
constexpr int64_t MAX_UNCONFIRMED_JUMP = 4;
//! Gaps by time (packets with an arrival time): one frame is 80 ms on air.
constexpr double FRAME_SECONDS = 0.08;
//! A packet whose seq lands within this many frames of where its arrival time
//! puts it continues the numbering; one further off belongs to a new numbering.
constexpr int64_t TIME_TOLERANCE = 4;
//! Silences longer than this (seconds, 750 frames) are not filled by time.
constexpr double MAX_TIME_GAP = 60.0;

struct LARGESC_API packet_header {
    uint8_t seq = 0;
    bool crc = false;
    uint8_t k = 1; //!< primary codebooks of frame n (1..32)
    std::array<uint8_t, MAX_COPY_OFFSET> r{ { 0, 0 } }; //!< copies of frames n-1, n-2
    unsigned n_tokens() const { return k + r[0] + r[1]; }
};

//! Total packet size in bytes for a header.
LARGESC_API size_t packet_size(const packet_header& h);

enum class parse_status {
    OK = 0,
    TOO_SHORT,   //!< fewer than 3 bytes
    BAD_VERSION, //!< version bits are not 01
    BAD_LENGTH,  //!< length differs from what the header announces
    BAD_PADDING, //!< non-zero padding bits
    BAD_CRC,     //!< CRC flag set and the CRC does not match
};
LARGESC_API const char* parse_status_name(parse_status s);

/*!
 * Builds a packet. tokens = K tokens of frame n, then r1 of frame n-1, then r2 of
 * frame n-2 (h.n_tokens() in all). Throws std::invalid_argument for fields out of
 * range, a token > 2047 or a token count that does not match the header.
 */
LARGESC_API std::vector<uint8_t>
build_packet(const packet_header& h, const uint16_t* tokens, size_t n_tokens);
//! As above, writing into \p out (cleared first; its capacity is reused).
LARGESC_API void build_packet_into(const packet_header& h,
                                   const uint16_t* tokens,
                                   size_t n_tokens,
                                   std::vector<uint8_t>& out);

/*!
 * Reads the 3-byte header alone (the first step of parse_packet): TOO_SHORT,
 * BAD_VERSION or OK, with h filled on OK. Length, CRC and padding are not
 * checked (monitors and recorders that only need seq, K, r1, r2 use this).
 */
LARGESC_API parse_status parse_header(const uint8_t* data, size_t len, packet_header& h);

/*!
 * Parses a packet from its bytes alone. On OK fills h and tokens (in packet order).
 * Never throws, never reads past len.
 */
LARGESC_API parse_status parse_packet(const uint8_t* data,
                                      size_t len,
                                      packet_header& h,
                                      std::vector<uint16_t>& tokens);

//! Where packetizer_core::place_frame() puts a frame.
struct LARGESC_API frame_placement {
    bool placed = false;  //!< false: the index breaks the numbering, the frame is refused
    bool restart = false; //!< placed as the first frame of a restarted numbering
    uint64_t pos = 0;     //!< on-air frame position (seq = pos mod 256)
};

/*!
 * \brief Transmit side: turns planned token frames into packets. Keeps the last
 * two frames to take copies from. Scheduler-free.
 */
class LARGESC_API packetizer_core
{
public:
    explicit packetizer_core(bool crc = false) : d_crc(crc) {}

    /*!
     * Packet for frame \p frame with tokens[0..n_q). k = primary codebooks (1..n_q,
     * at most 32), r_d = copies of frame - d (clipped to 15 and to the tokens that
     * frame had; 0 if that frame was not seen). Throws std::invalid_argument for a
     * bad k, n_q outside 1..32 or a token > 2047.
     */
    const std::vector<uint8_t>& packetize(uint64_t frame,
                                          const uint16_t* tokens,
                                          size_t n_q,
                                          unsigned k,
                                          unsigned r1 = 0,
                                          unsigned r2 = 0);

    /*!
     * \brief The frame-numbering restart rule of a transmitter fed frame indices
     * from upstream (docs/packet_format.md, "Transmitter", "Frame numbering").
     *
     * Decides the on-air position of input frame index \p frame, given the last
     * frame sent through packetize_placed() (index p, on-air position P): the
     * first frame goes on air at its own index; a frame p+1..p+MAX_FRAME_JUMP at
     * P + (frame - p) (the receiver plays the skipped frames as lost); any other
     * index (back, repeat, a jump the 8-bit seq cannot express) breaks the
     * numbering: refused (placed = false) and remembered, unless it is the index
     * right after the last refused one: then the upstream restarted its
     * numbering, and the frame goes on air at P+1 (restart = true). A placed
     * frame changes nothing until packetize_placed() sends it.
     */
    frame_placement place_frame(uint64_t frame);
    /*!
     * Packet for input frame index \p frame placed by place_frame() (placed):
     * a restart first forgets the history (no copies of the old numbering's
     * frames), then packetize() at the on-air position; the frame then counts
     * as the last frame sent. Throws as packetize() (the frame is then not
     * counted as sent).
     */
    const std::vector<uint8_t>& packetize_placed(uint64_t frame,
                                                 const frame_placement& at,
                                                 const uint16_t* tokens,
                                                 size_t n_q,
                                                 unsigned k,
                                                 unsigned r1 = 0,
                                                 unsigned r2 = 0);
    //! Whether a frame was sent through packetize_placed().
    bool numbering_started() const { return d_numbered; }
    //! Input frame index of the last frame sent through packetize_placed().
    uint64_t last_frame() const { return d_last_frame; }

    //! Header of the last packet built (after clipping).
    const packet_header& last_header() const { return d_last; }
    //! Forgets the history of frames to copy from (not the frame numbering).
    void reset() { d_n_hist = 0; }
    //! Switches the CRC for the next packets; forgets the history and the last
    //! header as a new packetizer would, keeps the frame numbering.
    void set_crc(bool crc)
    {
        d_crc = crc;
        d_n_hist = 0;
        d_last = packet_header();
    }
    bool crc() const { return d_crc; }

private:
    struct past_frame {
        uint64_t frame = 0;
        unsigned n_q = 0;
        std::array<uint16_t, MAX_CODEBOOKS> tokens{};
    };
    bool d_crc;
    std::array<past_frame, MAX_COPY_OFFSET> d_hist; // [0] newest
    unsigned d_n_hist = 0;
    packet_header d_last;
    std::array<uint16_t, MAX_CODEBOOKS + 2 * MAX_COPIES> d_tok{};
    std::vector<uint8_t> d_packet;
    // Frame numbering (place_frame): d_last_frame = input index of the last frame
    // sent, d_last_pos = its on-air position; equal until the first restart.
    bool d_numbered = false;
    uint64_t d_last_frame = 0, d_last_pos = 0;
    // the last frame refused because its index broke the numbering: the next
    // frame numbered right after it confirms a restart
    bool d_have_cand = false;
    uint64_t d_cand = 0;
};

//! One output frame of the depacketizer.
struct LARGESC_API rx_frame {
    uint64_t frame = 0;
    std::vector<uint16_t> tokens; //!< n_q tokens, 0 where lost
    std::vector<uint8_t> mask;    //!< 1 = received
    bool primary = false;         //!< the frame's own packet arrived
    //! arrival time of the first packet that brought any of its tokens (its own
    //! packet or a copy), NaN when none did or packets had no arrival time
    double rx_time = std::numeric_limits<double>::quiet_NaN();
    //! when the playout clock has it due to play (play_until's play_time), NaN otherwise
    double play_time = std::numeric_limits<double>::quiet_NaN();
};

/*!
 * The depacketizer's counters, listed once: X(name) for each, in the order
 * depacketizer_counters::for_each() and the counters() dicts give them.
 */
#define LARGESC_DEPACKETIZER_COUNTERS(X)                                          \
    X(packets_in)                                                                 \
    X(packets_accepted)                                                           \
    X(malformed) /* sum of the reasons below */                                   \
    X(not_pdu)   /* messages that are not a u8vector PDU (reject_not_pdu()) */    \
    X(too_short)                                                                  \
    X(bad_version)                                                                \
    X(bad_length)                                                                 \
    X(bad_padding)                                                                \
    X(bad_crc)                                                                    \
    /* valid packets more than MAX_UNCONFIRMED_JUMP frames ahead that the next */ \
    /* packet did not confirm (a corrupted seq), or still held at flush/reset */  \
    X(bad_seq)                                                                    \
    /* packets waiting for a decision: a suspect jump (0/1) plus the packets */   \
    /* of a timed restart run (0..3) */                                           \
    X(held)                                                                       \
    X(duplicates)     /* packets for a frame whose packet had arrived */          \
    X(late)           /* packets for frames already played out */                 \
    X(restarts)       /* transmitter restarts detected */                         \
    X(frames_out)     /* token frames played out (one per frame index) */         \
    X(frames_primary) /* output frames whose own packet arrived */                \
    X(frames_empty)   /* output frames with no token at all */                    \
    /* tokens a copy wrote into a frame not yet played out (counted when */       \
    /* written, also if the frame's own packet later overwrites them) */          \
    X(tokens_from_copies)                                                         \
    X(flushes) /* flush() calls: the flush port, end of stream, reset() */

//! The depacketizer's counters (LARGESC_DEPACKETIZER_COUNTERS describes them).
struct LARGESC_API depacketizer_counters {
#define LARGESC_COUNTER_FIELD(name) uint64_t name = 0;
    LARGESC_DEPACKETIZER_COUNTERS(LARGESC_COUNTER_FIELD)
#undef LARGESC_COUNTER_FIELD

    //! Calls fn(const char* name, uint64_t value) for each counter, in list order.
    template <typename F>
    void for_each(F&& fn) const
    {
#define LARGESC_COUNTER_VISIT(name) fn(#name, name);
        LARGESC_DEPACKETIZER_COUNTERS(LARGESC_COUNTER_VISIT)
#undef LARGESC_COUNTER_VISIT
    }
};

/*!
 * \brief Receive side: merges packets into token frames with a received mask.
 *
 * Works from sequence numbers (and arrival times, when given). Frame n is played out
 * (emitted) once a packet of frame n + delay or later has been accepted, so copies at
 * offsets up to delay can still fill it. Emits exactly one rx_frame per frame index, in
 * order, from the first packet's frame (less the copies it carries) on; frames nothing of
 * which arrived have an all-zero mask. A frame's width n_q is its K if its packet
 * arrived, else the last K seen, widened to its widest copy.
 *
 * Sequence numbers are unwrapped against the newest frame: a packet 1..4 frames
 * ahead is a jump (the frames in between are lost); 5..127 ahead it is held
 * until the next valid packet: one 1..127 frames ahead of it confirms the jump,
 * anything else (behind it, even by one frame) drops it (bad_seq, counted in
 * malformed), as do flush() and reset(). So without a CRC a corrupted seq costs
 * about one frame, never a run of empty frames; one packet plays out at most
 * MAX_FRAME_JUMP + MAX_UNCONFIRMED_JUMP = 131 frames (it confirms a held
 * 127-frame jump and is 4 frames past it). Behind the playout point a packet is
 * late. Four valid packets in a row (no other message, valid, invalid or not a
 * PDU, in between) with consecutive sequence numbers, all more than restart_gap
 * frames behind, mean the transmitter restarted: the pending frames are played out and
 * numbering continues from there (the first three of the new stream count as late). With
 * require_crc, a packet without a CRC is malformed (counted as bad_crc): on a link that
 * uses CRCs this rejects nearly all random junk.
 *
 * With arrival times (push(data, len, rx_time)) a packet that does not continue the
 * numbering by seq is placed by its time instead ("Gaps by time" in
 * docs/packet_format.md): a silence of any length up to MAX_TIME_GAP is played out
 * as lost frames, whether seq went on (an outage) or started again (a restart,
 * confirmed by RESTART_RUN consecutive packets, none of them lost).
 *
 * Merging: a frame's own packet writes codebooks 0..K-1 (also over tokens an
 * earlier copy wrote); a copy writes only tokens not yet received.
 */
class LARGESC_API depacketizer_core
{
public:
    //! delay 0..2, default_n_q 1..32, feedback_window >= 1, restart_gap 5..120
    //! (std::invalid_argument otherwise).
    depacketizer_core(unsigned delay = 1,
                      unsigned default_n_q = 8,
                      unsigned feedback_window = 125,
                      unsigned restart_gap = 32,
                      bool require_crc = false);

    //! Takes one packet. Returns its parse status (OK also for late/duplicate).
    parse_status push(const uint8_t* data, size_t len);
    //! Takes one packet that arrived at rx_time seconds on the receiver's clock
    //! (any origin; a NaN, infinite or decreasing time counts as no time). With
    //! times, gaps are filled by time: see "Gaps by time" in packet_format.md.
    parse_status push(const uint8_t* data, size_t len, double rx_time);
    //! Frames ready for playout, in order (copied out; clears them).
    std::vector<rx_frame> pop();
    //! Calls fn(const rx_frame&) for each frame ready for playout, then clears them.
    template <typename F>
    void drain(F&& fn)
    {
        for (size_t i = 0; i < d_n_ready; i++)
            fn(const_cast<const rx_frame&>(d_ready[i]));
        d_n_ready = 0;
    }
    //! Counts a message that is not a packet PDU (the block's not_pdu): in
    //! packets_in, malformed and not_pdu; it breaks a restart run as any
    //! invalid packet does, and does not settle a held packet.
    void reject_not_pdu();
    //! Plays out every frame up to the newest one seen (end of stream); counted in
    //! flushes.
    void flush();
    //! Plays out every frame up to `frame` now, whether its packets came or not
    //! (a playout clock: lost frames leave with an all-zero mask; a packet for a
    //! frame already played out is late). Nothing before the first packet.
    //! play_time (seconds on the clock's time base): when `frame` is due to play;
    //! each frame before it is due 80 ms earlier per frame. Noted on the frames
    //! it plays out (rx_frame::play_time), so that the blocks after it know when
    //! each frame must sound (token_recovery's deadline, mimi_decoder's output
    //! time); NaN: none.
    void play_until(int64_t frame,
                    double play_time = std::numeric_limits<double>::quiet_NaN());
    //! A playout clock's early release: plays out the frames from the next one up
    //! to `last` as long as each has its own packet (complete: a copy adds nothing
    //! to it), stopping at the first that has not; their play times as in
    //! play_until(last, play_time). Returns the last frame it played out, -1 if
    //! none (nothing before the first packet).
    int64_t play_arrived(int64_t last,
                         double play_time = std::numeric_limits<double>::quiet_NaN());
    //! The playout clock's reference: the q-quantile (0 = the smallest, nearest
    //! rank) of rx_time - frame x 80 ms over the last feedback_window packets
    //! that came with an arrival time and continued the numbering, late ones
    //! included (frame n arrives by ref + n x 80 ms on all but a share q of
    //! them); NaN before any, or for q outside 0..1.
    //! last > 0: only the newest `last` of those packets count.
    double arrival_ref(double q = 0.0, size_t last = 0) const;
    //! The next frame to play out (0 before the first packet).
    int64_t next_frame() const { return d_next; }
    //! The arrival time of the packet that made the newest frame; NaN if it had none.
    double newest_rx_time() const;
    //! With the clock on, a packet that has an arrival time no longer plays
    //! frames out (only play_until(), flush() and reset() do); packets without
    //! one still do. Off by default.
    void set_clocked(bool on) { d_clocked = on; }
    bool clocked() const { return d_clocked; }
    //! Ends the stream as flush() does (the pending frames are played out and
    //! stay ready for pop()/drain()), then forgets the numbering: the next valid
    //! packet starts a new stream as the first one did. Keeps the counters.
    void reset();

    const depacketizer_counters& counters() const
    {
        d_cnt.held = (d_held ? 1 : 0) + d_run.size();
        return d_cnt;
    }
    //! Loss statistics of the last feedback_window played-out frames' own packets.
    burst_stats window_stats() const;
    unsigned delay() const { return d_delay; }

private:
    struct slot {
        int64_t frame = -1;
        std::vector<uint16_t> tokens;
        std::vector<uint8_t> mask;
        bool primary = false;
        unsigned k = 0;
        double rx_time =
            std::numeric_limits<double>::quiet_NaN(); // first token's arrival
    };
    slot& slot_for(int64_t frame);
    void emit_until(int64_t last,
                    double play_time = std::numeric_limits<
                        double>::quiet_NaN()); // emit frames d_next..last inclusive
    void accept(int64_t frame, const packet_header& h, const std::vector<uint16_t>& tok);
    // the steps of push()
    parse_status parse_checked(const uint8_t* data, size_t len, packet_header& h);
    void count_malformed(parse_status st);
    void start(const packet_header& h);
    bool settle_held(const packet_header& h);
    void hold(int64_t frame, const packet_header& h);
    void take_behind(int64_t frame, const packet_header& h);
    bool timed(double t) const;
    void take_by_time(const packet_header& h, int64_t expected);
    void break_run();
    void note_arrival(int64_t frame);
    bool advance_newest(int64_t frame);

    //! A packet of a timed restart run, waiting for the run to complete.
    struct run_packet {
        packet_header hdr;
        std::vector<uint16_t> tok;
        int64_t expected; // the frame its arrival time names
    };

    static constexpr int RESTART_RUN = 4;
    unsigned d_delay, d_default_n_q, d_window, d_restart_gap;
    bool d_require_crc;
    bool d_started = false;
    int64_t d_next = 0;   // next frame to play out
    int64_t d_newest = 0; // newest frame index seen
    unsigned d_last_k;
    std::vector<slot> d_ring;      // 256 slots keyed by frame mod 256
    std::deque<uint8_t> d_fates;   // 1 = own packet lost, per played-out frame
    std::vector<rx_frame> d_ready; // reused storage; first d_n_ready are valid
    size_t d_n_ready = 0;
    // restart detection
    int d_behind_run = 0;
    int d_behind_last_seq = -1;
    uint8_t d_seq_offset = 0;    // added to incoming seq (changes at a restart)
    std::vector<uint16_t> d_tok; // tokens of the packet being parsed
    // a packet more than MAX_UNCONFIRMED_JUMP ahead, waiting for confirmation
    bool d_held = false;
    int64_t d_held_frame = 0;
    packet_header d_held_hdr;
    std::vector<uint16_t> d_held_tok;
    // gaps by time: arrival time of the packet being pushed (NaN: none) and
    // of the packet that set d_newest (valid when d_have_t)
    double d_t_cur = 0.0;
    double d_t_newest = 0.0;
    bool d_have_t = false;
    std::vector<run_packet> d_run; // a timed restart run (< RESTART_RUN packets)
    std::deque<double> d_arrival;  // rx_time - frame x 80 ms of recent timed packets
    bool d_clocked = false;        // frames leave by play_until() (a playout clock)
    mutable depacketizer_counters d_cnt;
};

/*!
 * Token-level simulation without a flowgraph. k[N], copies[N*D] (row-major, D <= 2),
 * lost[N] -> mask[N*n_codebooks]: mask[f*C + c] = 1 if codebook c of frame f arrived
 * in packet f (c < k[f], not lost[f]) or as a copy in packet f+d
 * (c < copies[(f+d)*D + d-1], not lost[f+d]).
 */
LARGESC_API void simulate_uep(const int32_t* k,
                              const int32_t* copies,
                              size_t D,
                              const uint8_t* lost,
                              size_t n_frames,
                              size_t n_codebooks,
                              uint8_t* mask);

/*!
 * The whole packet path without a scheduler: for each frame f, packetize
 * tokens[f*n_q ..] with plan k[f], copies[f*D ..] (D <= 2), drop the packet if
 * lost[f], feed the rest to a depacketizer with the given playout delay, flush.
 * Writes tokens_out[f*32 + c] and mask_out[f*32 + c] (zero beyond each frame's
 * width); frames before the first received packet stay all-zero. Returns the
 * number of bytes sent. Used for bit-exact sweeps and the core-speed benchmark.
 */
LARGESC_API uint64_t run_packet_path(const uint16_t* tokens,
                                     size_t n_q,
                                     const int32_t* k,
                                     const int32_t* copies,
                                     size_t D,
                                     const uint8_t* lost,
                                     size_t n_frames,
                                     unsigned delay,
                                     bool crc,
                                     uint16_t* tokens_out,
                                     uint8_t* mask_out);

} // namespace largesc
} // namespace gr

#endif /* INCLUDED_LARGESC_UEP_PACKET_H */
