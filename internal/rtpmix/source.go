package rtpmix

import "time"

// Sequence-number limits of RFC 3550 appendix A.1.
const (
	maxDropout  = 3000 // a forward jump this large is a discontinuity
	maxMisorder = 100  // a packet this far back is still a reordered one
	historyLen  = 1024 // sequence numbers remembered for duplicate detection
)

// seqClass says how a sequence number relates to an SSRC's history.
type seqClass int

const (
	seqNewer seqClass = iota // newer than any seen (or the first, or a confirmed restart)
	seqOlder                 // reordered: older than the highest, not seen before
	seqDup                   // seen before
	seqJump                  // an unconfirmed jump; not counted toward loss
)

// source is the state kept for one SSRC of a leg.
type source struct {
	ssrc uint32
	used uint64 // leg.tick when last seen, for eviction

	// Sequence accounting (RFC 3550 A.1) on extended sequence numbers.
	maxExt   int64 // highest extended sequence number
	baseExt  int64 // lowest extended sequence number counted
	received int64 // packets counted toward expected
	badSeq   int   // the sequence number that confirms a jump, or -1
	history  [historyLen / 64]uint64

	// Placement.
	anchored  bool
	anchorPos int64
	anchorTS  uint32

	// Interarrival jitter (RFC 3550 6.4.1), in nanoseconds.
	jitter  float64
	hasPrev bool
	prevArr time.Duration
	prevTS  uint32
}

func newSource(ssrc uint32, seq uint16) *source {
	s := &source{ssrc: ssrc}
	s.initSeq(seq)
	return s
}

func (s *source) initSeq(seq uint16) {
	s.maxExt, s.baseExt, s.received, s.badSeq = int64(seq), int64(seq), 1, -1
	clear(s.history[:])
	s.mark(int64(seq))
}

// expected returns the packets expected from the sequence numbers counted.
func (s *source) expected() int64 { return s.maxExt - s.baseExt + 1 }

func (s *source) seen(ext int64) bool {
	i := uint64(ext) % historyLen
	return s.history[i/64]>>(i%64)&1 != 0
}

func (s *source) mark(ext int64) {
	i := uint64(ext) % historyLen
	s.history[i/64] |= 1 << (i % 64)
}

func (s *source) unmark(ext int64) {
	i := uint64(ext) % historyLen
	s.history[i/64] &^= 1 << (i % 64)
}

// sequence classifies seq and updates the accounting. On a confirmed restart
// it returns the expected and received counts of the sequence that ended,
// for the leg to keep.
func (s *source) sequence(seq uint16) (c seqClass, foldExp, foldRecv int64) {
	udelta := seq - uint16(s.maxExt)
	switch {
	case udelta == 0:
		return seqDup, 0, 0
	case udelta < maxDropout:
		ext := s.maxExt + int64(udelta)
		if udelta >= historyLen {
			clear(s.history[:])
		} else {
			// Slots of the numbers now entering the window held numbers
			// historyLen older, which leave it.
			for e := s.maxExt + 1; e < ext; e++ {
				s.unmark(e)
			}
		}
		s.maxExt = ext
		s.mark(ext)
		s.received++
		s.badSeq = -1
		return seqNewer, 0, 0
	case udelta >= 1<<16-maxMisorder:
		ext := s.maxExt - int64(1<<16-int(udelta))
		if s.seen(ext) {
			return seqDup, 0, 0
		}
		s.mark(ext)
		s.received++
		s.baseExt = min(s.baseExt, ext)
		return seqOlder, 0, 0
	case int(seq) == s.badSeq:
		// Two sequential packets after a jump: the sender restarted its
		// sequence (RFC 3550 A.1). The packet before this one is counted in
		// neither sequence.
		foldExp, foldRecv = s.expected(), s.received
		s.initSeq(seq)
		return seqNewer, foldExp, foldRecv
	default:
		s.badSeq = int(seq + 1) // uint16 arithmetic wraps 65535 to 0
		return seqJump, 0, 0
	}
}

// place returns the timeline position of a packet with timestamp ts and
// arrival position arrPos, applying the placement rule of the package
// documentation. advancing says whether the packet may re-anchor the
// stream. ok is false if the packet cannot be placed.
func (s *source) place(ts uint32, arrPos int64, advancing bool, reanchor, maxAhead int64) (pos int64, reanchored, ok bool) {
	if !s.anchored {
		s.anchored, s.anchorPos, s.anchorTS = true, arrPos, ts
		return arrPos, false, true
	}
	pos = s.anchorPos + int64(int32(ts-s.anchorTS))
	if d := pos - arrPos; d > reanchor || -d > reanchor || d > maxAhead {
		if !advancing {
			return 0, false, false
		}
		s.anchorPos, s.anchorTS = arrPos, ts
		return arrPos, true, true
	}
	if advancing {
		// The same mapping, expressed from the newest packet, so that
		// int32(ts−anchorTS) never overflows however long the call.
		s.anchorPos, s.anchorTS = pos, ts
	}
	return pos, false, true
}

// updateJitter feeds one packet into the RFC 3550 interarrival jitter
// estimate. A packet that re-anchored the stream only restarts the
// estimate: its timestamp says nothing about its transit time.
func (s *source) updateJitter(arr time.Duration, ts uint32, restart bool) {
	if s.hasPrev && !restart {
		d := float64(arr) - float64(s.prevArr) - float64(int32(ts-s.prevTS))*float64(nsPerSample)
		if d < 0 {
			d = -d
		}
		s.jitter += (d - s.jitter) / 16
	}
	s.hasPrev, s.prevArr, s.prevTS = true, arr, ts
}
