package rtpmix

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// SampleRate is the output rate in sample frames per second, and the RTP
// clock rate of G.711 (RFC 3551, section 4.5.14).
const SampleRate = 8000

// Defaults for zero Config fields.
const (
	DefaultChannels = 2
	DefaultWindow   = 200 * time.Millisecond
	DefaultReanchor = time.Second
	DefaultGapMin   = 200 * time.Millisecond
	DefaultMaxAhead = 5 * time.Second
)

// MaxChannels is the largest number of output channels a Timeline has.
const MaxChannels = 8

const (
	nsPerSample = int64(time.Second) / SampleRate // 125000, exactly
	frameLen    = 160                             // samples in a buffered frame: 20 ms
)

// Config of a Timeline. Zero fields take defaults; negative ones make New
// panic.
type Config struct {
	// Channels is the number of output channels, 1..MaxChannels.
	// If unset, DefaultChannels (2).
	Channels int
	// Window is the jitter window: Drain(now) emits only positions before
	// now−Window. If unset, DefaultWindow (200 ms).
	Window time.Duration
	// Reanchor: a packet that advances its stream and whose timeline
	// position differs from its arrival position by more than this
	// re-anchors the stream at its arrival. If unset, DefaultReanchor (1 s).
	Reanchor time.Duration
	// GapMin: a silence between covered positions at least this long counts
	// in Stats.Gaps. If unset, DefaultGapMin (200 ms).
	GapMin time.Duration
	// MaxAhead bounds buffered future audio per leg: a packet whose position
	// is more than this after its arrival position re-anchors. If unset,
	// DefaultMaxAhead (5 s).
	MaxAhead time.Duration
}

// A Timeline assembles the legs of one call into interleaved PCM. Create it
// with New, add legs with Leg, push packets to the legs and collect the
// output with Drain and finally Close. All methods are safe for concurrent
// use.
type Timeline struct {
	// Immutable after New.
	start    time.Time
	channels int
	window   time.Duration
	reanchor int64 // samples
	maxAhead int64 // samples
	gapMin   int64 // samples

	mu      sync.Mutex
	emitted int64 // positions < emitted have been returned; guarded by mu
	closed  bool  // guarded by mu
	legs    []*Leg

	// Scratch for mixFrame, guarded by mu.
	srcs [][]*frame // per channel, the frames being mixed into it
	acc  [frameLen]int32
	mix  [MaxChannels][frameLen]int16
	zero [frameLen]int16 // never written
}

// New starts a timeline whose sample 0 is at start on the wall clock. The
// Arrival of pushed packets and the times given to Drain and Close must be
// read from the same clock. New panics if cfg.Channels is outside
// 0..MaxChannels or a duration is negative.
func New(start time.Time, cfg Config) *Timeline {
	if cfg.Channels < 0 || cfg.Channels > MaxChannels {
		panic(fmt.Sprintf("rtpmix: %d channels, want 1..%d", cfg.Channels, MaxChannels))
	}
	if cfg.Window < 0 || cfg.Reanchor < 0 || cfg.GapMin < 0 || cfg.MaxAhead < 0 {
		panic("rtpmix: negative duration in Config")
	}
	def := func(v, d time.Duration) time.Duration {
		if v == 0 {
			return d
		}
		return v
	}
	ch := cfg.Channels
	if ch == 0 {
		ch = DefaultChannels
	}
	gapMin := int64(def(cfg.GapMin, DefaultGapMin))
	return &Timeline{
		start:    start,
		channels: ch,
		window:   def(cfg.Window, DefaultWindow),
		// "More than Reanchor" is more than floor(Reanchor) whole samples.
		reanchor: int64(def(cfg.Reanchor, DefaultReanchor)) / nsPerSample,
		maxAhead: int64(def(cfg.MaxAhead, DefaultMaxAhead)) / nsPerSample,
		// "At least GapMin" is at least ceil(GapMin) whole samples.
		gapMin: (gapMin + nsPerSample - 1) / nsPerSample,
		srcs:   make([][]*frame, ch),
	}
}

// Leg adds an input stream that writes to the given output channels,
// usually one; a single stream carrying both parties may be put on several.
// Legs sharing a channel are summed with saturation. A channel listed twice
// counts once. Leg panics if no channel is given or one is outside
// 0..Channels−1.
func (t *Timeline) Leg(channels ...int) *Leg {
	if len(channels) == 0 {
		panic("rtpmix: Leg needs at least one channel")
	}
	var chs []int
	for _, c := range channels {
		if c < 0 || c >= t.channels {
			panic(fmt.Sprintf("rtpmix: channel %d out of range 0..%d", c, t.channels-1))
		}
		if !slices.Contains(chs, c) {
			chs = append(chs, c)
		}
	}
	l := &Leg{t: t, channels: chs, frames: make(map[int64]*frame)}
	t.mu.Lock()
	t.legs = append(t.legs, l)
	t.mu.Unlock()
	return l
}

// Drain appends to dst and returns the interleaved little-endian int16
// frames for every position from the last emitted one up to, not including,
// floor((now−start−Window)·8000). Positions no packet covered are zeros. No
// position is ever returned twice: if that bound is not past the last
// emitted position, or the timeline is closed, dst is returned unchanged.
func (t *Timeline) Drain(dst []byte, now time.Time) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return dst
	}
	d := now.Sub(t.start)
	if d < math.MinInt64+t.window {
		return dst
	}
	return t.emit(dst, floorDiv(int64(d-t.window), nsPerSample))
}

// Close appends to dst and returns every position not yet emitted up to, not
// including, floor((end−start)·8000), including audio received for
// positions inside the jitter window, and releases all buffered audio. After
// Close, Push only counts the packet as Late, and Drain and Close return dst
// unchanged.
func (t *Timeline) Close(dst []byte, end time.Time) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return dst
	}
	dst = t.emit(dst, floorDiv(int64(end.Sub(t.start)), nsPerSample))
	t.closed = true
	for _, l := range t.legs {
		l.frames, l.spare = nil, nil
	}
	return dst
}

// Emitted returns the number of sample frames emitted so far, which is also
// the position the next Drain or Close starts at.
func (t *Timeline) Emitted() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.emitted
}

// emit appends positions [t.emitted, target) to dst. t.mu must be held.
func (t *Timeline) emit(dst []byte, target int64) []byte {
	if target <= t.emitted {
		return dst
	}
	stride := 2 * t.channels
	n := len(dst)
	dst = slices.Grow(dst, int(target-t.emitted)*stride)[:n+int(target-t.emitted)*stride]
	out := dst[n:]
	for pos := t.emitted; pos < target; {
		if t.allEmpty() {
			clear(out)
			break
		}
		k := floorDiv(pos, frameLen)
		base := k * frameLen
		lo, hi := int(pos-base), int(min(frameLen, target-base))
		chunk := out[:(hi-lo)*stride]
		out = out[len(chunk):]
		pos = base + int64(hi)
		t.mixFrame(chunk, k, base, lo, hi)
	}
	t.emitted = target
	return dst
}

// mixFrame writes positions base+lo..base+hi of every channel, interleaved,
// into chunk, and releases the legs' frame k if it is then fully emitted.
// t.mu must be held.
func (t *Timeline) mixFrame(chunk []byte, k, base int64, lo, hi int) {
	for c := range t.srcs {
		t.srcs[c] = t.srcs[c][:0]
	}
	hit := false
	for _, l := range t.legs {
		f := l.frames[k]
		if f == nil {
			continue
		}
		hit = true
		l.noteCoverage(f, base, lo, hi)
		for _, c := range l.channels {
			t.srcs[c] = append(t.srcs[c], f)
		}
		if hi == frameLen {
			delete(l.frames, k)
			// Recycled frames are only reused by Push, which cannot run
			// before this mix is done: t.mu is held.
			l.recycle(f)
		}
	}
	if !hit {
		clear(chunk)
		return
	}
	var chans [MaxChannels][]int16
	for c, fs := range t.srcs {
		switch len(fs) {
		case 0:
			chans[c] = t.zero[lo:hi]
		case 1:
			chans[c] = fs[0].s[lo:hi]
		default:
			acc := t.acc[lo:hi]
			clear(acc)
			for _, f := range fs {
				for i, v := range f.s[lo:hi] {
					acc[i] += int32(v)
				}
			}
			mix := t.mix[c][lo:hi]
			for i, v := range acc {
				mix[i] = int16(max(math.MinInt16, min(math.MaxInt16, v)))
			}
			chans[c] = mix
		}
	}
	switch len(t.srcs) {
	case 1:
		a := chans[0]
		for i := range a {
			binary.LittleEndian.PutUint16(chunk[2*i:], uint16(a[i]))
		}
	case 2:
		a, b := chans[0], chans[1][:len(chans[0])]
		for i := range a {
			binary.LittleEndian.PutUint32(chunk[4*i:], uint32(uint16(a[i]))|uint32(uint16(b[i]))<<16)
		}
	default:
		stride := 2 * len(t.srcs)
		for c, s := range chans[:len(t.srcs)] {
			o := chunk[2*c:]
			for i, v := range s {
				binary.LittleEndian.PutUint16(o[i*stride:], uint16(v))
			}
		}
	}
}

// allEmpty reports whether no leg holds any buffered frame. t.mu must be held.
func (t *Timeline) allEmpty() bool {
	for _, l := range t.legs {
		if len(l.frames) > 0 {
			return false
		}
	}
	return true
}

// floorDiv returns ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// roundPos returns the position of wall-clock offset d, rounded to the
// nearest sample (halves up).
func roundPos(d time.Duration) int64 {
	q := floorDiv(int64(d), nsPerSample)
	if r := int64(d) - q*nsPerSample; 2*r >= nsPerSample {
		q++
	}
	return q
}
