package rtpmix

import (
	"math/bits"
	"slices"
	"time"

	"callvault/internal/audio"
)

// RTP payload types of G.711 (RFC 3551, table 4).
const (
	PayloadPCMU = 0
	PayloadPCMA = 8
)

const (
	maxSources = 16 // SSRC states kept per leg
	maxSpare   = 16 // recycled frames kept per leg
)

// Packet is one received RTP packet, already parsed and decrypted by the
// caller.
type Packet struct {
	Arrival     time.Time // when it was received, on the clock of New's start
	SSRC        uint32
	Seq         uint16
	Timestamp   uint32
	PayloadType uint8  // PayloadPCMU or PayloadPCMA; any other is counted in Stats.Ignored and dropped
	Payload     []byte // one G.711 sample per byte; not retained after Push returns
}

// Stats of one leg. It holds counts only: no addresses, SSRCs or audio.
type Stats struct {
	// Packets is the number of audio packets written to the timeline, in
	// whole or (if also Late) in part.
	Packets int64 `json:"packets"`
	// Lost is RFC 3550 cumulative loss: packets expected from the sequence
	// numbers (extended highest − lowest + 1 per SSRC, summed) minus
	// packets received, never negative. Late and paused packets were
	// received; duplicates are not counted twice.
	Lost int64 `json:"lost"`
	// Late counts packets that arrived after some or all of their positions
	// were emitted (only the unemitted samples are written), reordered
	// packets that could not be placed (see the package documentation), and
	// packets pushed after Close.
	Late int64 `json:"late"`
	// Duplicates counts packets whose SSRC and sequence number were seen
	// before, within the last 1024 sequence numbers of that SSRC. They are
	// dropped.
	Duplicates int64 `json:"duplicates"`
	// PausedPackets counts audio packets pushed while the leg was paused.
	// They are dropped and their span is silent.
	PausedPackets int64 `json:"paused_packets"`
	// Ignored counts packets of a payload type other than G.711 (comfort
	// noise, telephone events, …). They are dropped.
	Ignored int64 `json:"ignored"`
	// JitterMS is the RFC 3550 interarrival jitter estimate, in
	// milliseconds, of the SSRC of the latest audio packet.
	JitterMS float64 `json:"jitter_ms"`
	// Gaps counts silences of at least GapMin between consecutive covered
	// positions of this leg (hold, loss bursts), once emitted.
	Gaps int64 `json:"gaps"`
	// GapMS is the total length of those silences, in milliseconds.
	GapMS int64 `json:"gap_ms"`
	// Reanchors counts re-anchorings of a stream (anchoring a new SSRC is
	// not counted).
	Reanchors int64 `json:"reanchors"`
	// SSRCs is the number of distinct SSRCs seen. An SSRC that returns after
	// 16 others were seen since is counted again.
	SSRCs int `json:"ssrcs"`
	// Codecs lists "PCMU" and "PCMA" as first seen.
	Codecs []string `json:"codecs"`
}

// A Leg is one input stream of a Timeline, written to fixed output
// channels. Its methods are safe for concurrent use.
type Leg struct {
	t        *Timeline // immutable
	channels []int     // immutable

	// All below guarded by t.mu.
	paused  bool
	frames  map[int64]*frame // buffered audio by absolute frame index; every key ≥ ⌊emitted/frameLen⌋
	spare   []*frame
	sources []*source // at most maxSources, for eviction by used
	cur     *source   // the source of the latest packet
	jit     *source   // the source of the latest audio packet
	tick    uint64

	// Loss accounting of evicted sources and ended sequences.
	foldExpected, foldReceived int64

	// End of the last covered position emitted, for gap statistics.
	covered bool
	lastCov int64

	st Stats // Lost and JitterMS are computed in Stats
}

// frame is frameLen samples of a leg, starting at a multiple of frameLen.
type frame struct {
	s   [frameLen]int16
	cov [(frameLen + 63) / 64]uint64 // bit i: s[i] was written by a packet
}

// Push places p on the leg's timeline as the package documentation
// describes. It is safe for concurrent use with the Push of any leg and
// with the other methods of the Timeline.
func (l *Leg) Push(p Packet) {
	t := l.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		l.st.Late++
		return
	}
	s, fresh := l.source(p.SSRC, p.Seq)
	class := seqNewer
	if !fresh {
		var fe, fr int64
		class, fe, fr = s.sequence(p.Seq)
		l.foldExpected += fe
		l.foldReceived += fr
	}
	if class == seqDup {
		l.st.Duplicates++
		return
	}

	codec := p.PayloadType
	switch codec {
	case PayloadPCMU:
		l.noteCodec("PCMU")
	case PayloadPCMA:
		l.noteCodec("PCMA")
	default:
		l.st.Ignored++
		return
	}

	arr := p.Arrival.Sub(t.start)
	advancing := class == seqNewer ||
		class == seqJump && (!s.anchored || int32(p.Timestamp-s.anchorTS) > 0)
	pos, reanchored, ok := s.place(p.Timestamp, roundPos(arr), advancing, t.reanchor, t.maxAhead)
	s.updateJitter(arr, p.Timestamp, reanchored)
	l.jit = s
	if reanchored {
		l.st.Reanchors++
	}
	if l.paused {
		l.st.PausedPackets++
		if !ok {
			return
		}
		// The span is written as covered silence, so that the pause
		// overwrites anything buffered for it and is not reported as a gap.
		codec = silence
	} else if !ok {
		l.st.Late++
		return
	}

	audible := codec != silence
	n := int64(len(p.Payload))
	if n == 0 {
		if audible {
			l.st.Packets++
		}
		return
	}
	if pos+n <= t.emitted {
		if audible {
			l.st.Late++
		}
		return
	}
	skip := max(0, t.emitted-pos)
	if audible {
		l.st.Packets++
		if skip > 0 {
			l.st.Late++
		}
	}
	l.write(pos+skip, p.Payload[skip:], codec)
}

// silence is a payload type for write that writes zeros.
const silence = 0xFF

// write stores the samples of payload, decoded as payload type codec
// (PayloadPCMU, PayloadPCMA or silence), at positions from pos on. t.mu
// must be held.
func (l *Leg) write(pos int64, payload []byte, codec uint8) {
	for len(payload) > 0 {
		k := floorDiv(pos, frameLen)
		off := int(pos - k*frameLen)
		m := min(frameLen-off, len(payload))
		f := l.frames[k]
		if f == nil {
			f = l.newFrame()
			l.frames[k] = f
		}
		dst := f.s[off : off+m]
		src := payload[:m]
		switch codec {
		case PayloadPCMU:
			for i, b := range src {
				dst[i] = audio.DecodeMuLaw(b)
			}
		case PayloadPCMA:
			for i, b := range src {
				dst[i] = audio.DecodeALaw(b)
			}
		default:
			clear(dst)
		}
		f.cover(off, off+m)
		pos += int64(m)
		payload = payload[m:]
	}
}

// source returns the state of ssrc, creating it if needed (fresh).
func (l *Leg) source(ssrc uint32, seq uint16) (s *source, fresh bool) {
	l.tick++
	if l.cur != nil && l.cur.ssrc == ssrc {
		l.cur.used = l.tick
		return l.cur, false
	}
	for _, s := range l.sources {
		if s.ssrc == ssrc {
			s.used = l.tick
			l.cur = s
			return s, false
		}
	}
	if len(l.sources) == maxSources {
		i := 0
		for j, s := range l.sources {
			if s.used < l.sources[i].used {
				i = j
			}
		}
		old := l.sources[i]
		l.foldExpected += old.expected()
		l.foldReceived += old.received
		l.sources = slices.Delete(l.sources, i, i+1)
	}
	s = newSource(ssrc, seq)
	s.used = l.tick
	l.sources = append(l.sources, s)
	l.cur = s
	l.st.SSRCs++
	return s, true
}

func (l *Leg) noteCodec(name string) {
	if !slices.Contains(l.st.Codecs, name) {
		l.st.Codecs = append(l.st.Codecs, name)
	}
}

func (l *Leg) newFrame() *frame {
	if n := len(l.spare); n > 0 {
		f := l.spare[n-1]
		l.spare = l.spare[:n-1]
		*f = frame{}
		return f
	}
	return new(frame)
}

func (l *Leg) recycle(f *frame) {
	if len(l.spare) < maxSpare {
		l.spare = append(l.spare, f)
	}
}

// noteCoverage updates the gap statistics with the covered runs of
// f.s[lo:hi], which is being emitted; f starts at position base.
func (l *Leg) noteCoverage(f *frame, base int64, lo, hi int) {
	for i := lo; i < hi; {
		s := f.next(i, hi, true)
		if s == hi {
			return
		}
		e := f.next(s, hi, false)
		if start := base + int64(s); l.covered {
			if g := start - l.lastCov; g > 0 && g >= l.t.gapMin {
				l.st.Gaps++
				l.st.GapMS += (g*1000 + SampleRate/2) / SampleRate
			}
		}
		l.covered, l.lastCov = true, base+int64(e)
		i = e
	}
}

// SetPaused pauses or resumes the leg. While paused, pushed audio packets
// are dropped (counted in Stats.PausedPackets) and the positions they would
// have covered stay silent; their sequence numbers and timing still count,
// so resuming causes neither loss nor a re-anchor.
func (l *Leg) SetPaused(paused bool) {
	l.t.mu.Lock()
	l.paused = paused
	l.t.mu.Unlock()
}

// Stats returns a snapshot of the leg's statistics.
func (l *Leg) Stats() Stats {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	st := l.st
	st.Codecs = slices.Clone(l.st.Codecs)
	exp, recv := l.foldExpected, l.foldReceived
	for _, s := range l.sources {
		exp += s.expected()
		recv += s.received
	}
	st.Lost = max(0, exp-recv)
	if l.jit != nil {
		st.JitterMS = l.jit.jitter / 1e6
	}
	return st
}

// cover marks f.s[a:b] as written.
func (f *frame) cover(a, b int) {
	for a < b {
		w, bit := a/64, a%64
		n := min(b-a, 64-bit)
		f.cov[w] |= (1<<n - 1) << bit // n ≤ 64: 1<<64−1 wraps to all ones
		a += n
	}
}

// next returns the first index in [i, hi) whose coverage is set (or clear,
// if set is false), or hi.
func (f *frame) next(i, hi int, set bool) int {
	for i < hi {
		w := f.cov[i/64]
		if !set {
			w = ^w
		}
		if w >>= i % 64; w != 0 {
			return min(hi, i+bits.TrailingZeros64(w))
		}
		i = (i/64 + 1) * 64
	}
	return hi
}
