package rtpmix

import (
	"testing"
	"time"
)

// fuzzBytes hands out the fuzz input, then zeros.
type fuzzBytes []byte

func (b *fuzzBytes) byte() byte {
	if len(*b) == 0 {
		return 0
	}
	v := (*b)[0]
	*b = (*b)[1:]
	return v
}

func (b *fuzzBytes) u16() uint16 { return uint16(b.byte())<<8 | uint16(b.byte()) }
func (b *fuzzBytes) u32() uint32 { return uint32(b.u16())<<16 | uint32(b.u16()) }

// FuzzPush drives a timeline with packet sequences built from the fuzz
// input and checks that it never panics and that every Drain and Close
// returns exactly the frames its time implies.
func FuzzPush(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 7, 7, 7, 7, 7, 0, 0, 0})
	f.Add([]byte{2, 50, 20, 1, 0, 1, 4, 9, 0, 0, 2, 10, 0, 255, 255, 3, 1, 1, 0, 4, 2, 2, 1, 1, 99, 5, 5, 8, 200, 1})
	f.Add([]byte{0, 0, 7, 0, 0, 0, 0, 5, 5, 5, 5, 1, 1, 0, 0, 6, 6, 6, 6, 6, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzBytes(data)
		cfg := Config{
			Channels: 1 + int(in.byte()%MaxChannels),
			Window:   time.Duration(in.byte()) * 5 * time.Millisecond,
			Reanchor: time.Duration(in.byte()) * 20 * time.Millisecond,
			GapMin:   time.Duration(in.byte()) * time.Millisecond,
			MaxAhead: time.Duration(in.byte()) * 40 * time.Millisecond,
		}
		window := cfg.Window
		if window == 0 {
			window = DefaultWindow
		}
		start := t0.Add(time.Duration(int8(in.byte())) * time.Millisecond)
		tl := New(start, cfg)
		var legs []*Leg
		for range 1 + in.byte()%3 {
			chs := []int{int(in.byte()) % cfg.Channels}
			if in.byte()%4 == 0 {
				chs = append(chs, int(in.byte())%cfg.Channels)
			}
			legs = append(legs, tl.Leg(chs...))
		}
		stride := 2 * cfg.Channels
		var emitted int64
		// frames returns the frames up to which a call at time tm with
		// delay back emits, by a computation independent of the package.
		frames := func(tm time.Time, back time.Duration) int64 {
			ns := tm.Sub(start) - back
			q := int64(ns) / 125000
			if int64(ns)%125000 < 0 {
				q--
			}
			return q
		}
		check := func(what string, out []byte, target int64) {
			want := max(0, target-emitted)
			if int64(len(out)) != want*int64(stride) {
				t.Fatalf("%s: %d bytes, want %d frames of %d bytes", what, len(out), want, stride)
			}
			emitted += want
			if got := tl.Emitted(); got != emitted {
				t.Fatalf("%s: Emitted %d, want %d", what, got, emitted)
			}
		}

		const horizon = 20 * time.Second // bounds the output per input
		now := t0
		type state struct {
			seq uint16
			ts  uint32
		}
		st := map[uint32]*state{}
		buf := make([]byte, 0, 1<<16)
		for ops := 0; len(in) > 0 && ops < 1000 && now.Before(t0.Add(horizon)); ops++ {
			switch op := in.byte(); op % 8 {
			case 0: // time passes, a drain tick
				now = now.Add(time.Duration(in.byte()) * 2 * time.Millisecond)
				check("Drain", tl.Drain(buf[:0], now), frames(now, window))
			case 1: // a long silence
				now = now.Add(time.Duration(in.byte()) * 50 * time.Millisecond)
			case 2: // a drain with a clock that went back
				back := time.Duration(in.byte()) * 10 * time.Millisecond
				check("Drain back", tl.Drain(buf[:0], now.Add(-back)), frames(now.Add(-back), window))
			case 3:
				legs[int(in.byte())%len(legs)].SetPaused(in.byte()%2 == 0)
			default: // a packet
				l := legs[int(op/8)%len(legs)]
				ssrc := uint32(in.byte() % 3)
				s := st[ssrc]
				if s == nil {
					s = &state{seq: in.u16(), ts: in.u32()}
					st[ssrc] = s
				}
				switch m := in.byte(); m % 6 {
				case 0, 1, 2:
					s.seq++
					s.ts += 160
				case 3: // reordered, duplicated or stood still
					s.seq -= uint16(m / 6 % 8)
					s.ts -= uint32(m/6%8) * 160
				case 4:
					s.seq = in.u16()
				case 5:
					s.ts = in.u32()
				}
				var pt uint8
				switch v := in.byte(); v % 8 {
				case 0, 1, 2:
					pt = PayloadPCMU
				case 3, 4:
					pt = PayloadPCMA
				case 5:
					pt = 13
				case 6:
					pt = 101
				default:
					pt = v
				}
				var n int
				switch v := in.byte(); v % 8 {
				case 0, 1, 2, 3:
					n = 160
				case 4:
					n = 0
				case 5:
					n = 1
				case 6:
					n = 1500
				default:
					n = int(v)
				}
				payload := make([]byte, n)
				fill := in.byte()
				for i := range payload {
					payload[i] = fill + byte(i)
				}
				arrival := now.Add(time.Duration(int8(in.byte())) * time.Millisecond)
				l.Push(Packet{Arrival: arrival, SSRC: ssrc, Seq: s.seq, Timestamp: s.ts, PayloadType: pt, Payload: payload})
				for i := range payload {
					payload[i] = 0xAA // Push must not retain it
				}
			}
			for _, l := range legs {
				if len(l.frames) > 1<<14 {
					t.Fatalf("leg holds %d frames", len(l.frames))
				}
			}
		}
		end := now.Add(time.Duration(in.byte()) * 10 * time.Millisecond)
		check("Close", tl.Close(buf[:0], end), frames(end, 0))
		if out := tl.Drain(nil, end.Add(time.Hour)); len(out) != 0 {
			t.Fatalf("Drain after Close: %d bytes", len(out))
		}
		for _, l := range legs {
			l.Push(Packet{Arrival: end, PayloadType: PayloadPCMU, Payload: make([]byte, 160)})
			st := l.Stats()
			if st.Lost < 0 || st.Late < 1 || st.JitterMS < 0 || st.Gaps < 0 || st.GapMS < 0 {
				t.Fatalf("stats %+v", st)
			}
		}
	})
}
