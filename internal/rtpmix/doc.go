// Package rtpmix assembles the RTP streams of a recorded call into one
// multichannel, 16-bit, 8000 Hz PCM timeline aligned to the wall clock, and
// hands it out incrementally so it can stream straight into encryption.
//
// # Timeline
//
// Output sample position p (a frame of Channels samples) is the wall-clock
// instant start + p/8000 s, where start is given to New. Each input stream
// (a Leg: the caller, the nurse, or one mixed stream) writes to its own output
// channels; legs are never mixed across channels, and legs that share a
// channel are summed with saturation to the int16 range. A position no packet
// covered is silence (0), so wall-clock time is preserved through loss, hold
// and pauses: a ten-minute hold is ten minutes of zeros.
//
// Drain(now) emits every position before now−Window; Close(end) emits the
// rest up to end, including audio still inside the window. Positions come
// out in order and exactly once. The concatenation of all Drain and Close
// results does not depend on when Drain was called, as long as its now never
// runs ahead of the Arrival of packets still to be pushed: then the packets
// that are late are exactly those that arrive more than Window after their
// position, whatever the schedule.
//
// # Placement
//
// Per leg and per SSRC:
//
//   - The arrival position of a packet is round((Arrival−start)·8000).
//   - The first G.711 packet of an SSRC anchors it: its Timestamp maps to its
//     arrival position. (A new SSRC anchors the same way; that is not counted
//     as a re-anchor.)
//   - Later packets of that SSRC land at anchorPos + int32(ts − anchorTS), the
//     wrap-safe signed difference of the 32-bit RTP timestamps.
//   - If that position differs from the packet's arrival position by more
//     than Reanchor, or lies more than MaxAhead after it, and the packet
//     advances the stream (its sequence number is newer than any seen, or it
//     starts a new sequence after a jump), the SSRC re-anchors at the
//     packet's arrival position. This covers a hold during which the sender's
//     timestamp stood still, a timestamp jump, and clock drift. A reordered
//     (older) packet that fails the same test cannot be placed reliably and
//     is dropped and counted Late: one stray packet seconds late must not
//     move the whole stream.
//
// In normal flow a packet's arrival position is at or after its true
// position (network delay), and it is the jitter window that keeps it from
// being late: with Window 200 ms a packet that arrives no more than 200 ms
// after the wall-clock time of its position (relative to the anchoring
// packet's delay) is on time. A packet all of whose positions were already
// emitted is Late and dropped; one partly emitted writes only its unemitted
// samples and is counted Late once. Within a leg a later packet overwrites
// an earlier one at the same positions. Payload type 0 is decoded with
// audio.DecodeMuLaw and 8 with audio.DecodeALaw, one sample per byte; other
// payload types (comfort noise, telephone events) are counted and dropped.
//
// # Statistics
//
// Duplicates are detected per SSRC on the extended sequence number over the
// last 1024 sequence numbers (a sliding window, as SRTP replay protection
// does). Loss follows RFC 3550 appendix A.1: expected is extended highest
// minus lowest sequence number plus one, per SSRC, summed; a sequence jump of
// 3000 or more (or back by more than 100) restarts the count once confirmed
// by the next packet. Every packet of an SSRC, of any payload type, counts
// toward loss accounting, since telephone events share the sequence space.
// Gaps are silences of at least GapMin between consecutive covered positions
// of a leg, counted once both ends have been emitted; a paused span counts as
// covered (silent) and so is not a gap.
//
// # Buffering
//
// Each leg holds decoded audio in a map from absolute 20 ms frame index to a
// 160-sample frame with a coverage bitmap, rather than in a ring. A map is
// sparse: silence costs nothing, so a ten-minute hold, an undrained stretch
// of time or a packet anchored far from the others allocates only the frames
// packets actually wrote, and memory is proportional to received audio not
// yet emitted, never to a span of time. A ring would have to be sized for the
// largest distance between the emitted position and the furthest write, and
// either grow to it or refuse audio. Frames are removed as soon as they are
// fully emitted and recycled through a short per-leg free list. Only
// positions at or after the emitted one and at most MaxAhead (plus one
// payload) beyond a packet's arrival position are ever written; audio stays
// buffered only until the caller drains it, so a caller drains on a ticker.
// Per-SSRC state is kept for the 16 most recently seen SSRCs of a leg.
//
// # Concurrency
//
// A Timeline has one mutex; Push, SetPaused, Stats, Drain, Close and Emitted
// may be called from any goroutine.
package rtpmix
