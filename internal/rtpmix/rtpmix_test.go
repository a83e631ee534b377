package rtpmix

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"callvault/internal/audio"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const ptime = 20 * time.Millisecond

func at(d time.Duration) time.Time { return t0.Add(d) }

func encode(s int16, pt uint8) byte {
	if pt == PayloadPCMA {
		return audio.EncodeALaw(s)
	}
	return audio.EncodeMuLaw(s)
}

func decode(b byte, pt uint8) int16 {
	if pt == PayloadPCMA {
		return audio.DecodeALaw(b)
	}
	return audio.DecodeMuLaw(b)
}

// roundTrip returns samples as they come out of G.711 coding with pt.
func roundTrip(samples []int16, pt uint8) []int16 {
	out := make([]int16, len(samples))
	for i, s := range samples {
		out[i] = decode(encode(s, pt), pt)
	}
	return out
}

// packets cuts samples into 20 ms packets: packet k has sequence number
// seq0+k, timestamp ts0+160k and arrives at arr0 + k·20ms.
func packets(samples []int16, pt uint8, ssrc uint32, seq0 uint16, ts0 uint32, arr0 time.Time) []Packet {
	var ps []Packet
	for k := 0; k*frameLen < len(samples); k++ {
		chunk := samples[k*frameLen : min(len(samples), (k+1)*frameLen)]
		payload := make([]byte, len(chunk))
		for i, s := range chunk {
			payload[i] = encode(s, pt)
		}
		ps = append(ps, Packet{
			Arrival:     arr0.Add(time.Duration(k) * ptime),
			SSRC:        ssrc,
			Seq:         seq0 + uint16(k),
			Timestamp:   ts0 + uint32(k*frameLen),
			PayloadType: pt,
			Payload:     payload,
		})
	}
	return ps
}

type event struct {
	leg *Leg
	p   Packet
}

func events(l *Leg, ps []Packet) []event {
	evs := make([]event, len(ps))
	for i, p := range ps {
		evs[i] = event{l, p}
	}
	return evs
}

// play pushes evs in order of arrival (stable), draining at every arrival
// and at every tick, then closes the timeline at end.
func play(tl *Timeline, evs []event, ticks []time.Time, end time.Time) []byte {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].p.Arrival.Before(evs[j].p.Arrival) })
	var out []byte
	for _, e := range evs {
		for len(ticks) > 0 && !ticks[0].After(e.p.Arrival) {
			out = tl.Drain(out, ticks[0])
			ticks = ticks[1:]
		}
		out = tl.Drain(out, e.p.Arrival)
		e.leg.Push(e.p)
	}
	for _, tk := range ticks {
		if tk.Before(end) {
			out = tl.Drain(out, tk)
		}
	}
	return tl.Close(out, end)
}

// channel extracts channel c of interleaved output with chs channels.
func channel(out []byte, chs, c int) []int16 {
	n := len(out) / (2 * chs)
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(out[(i*chs+c)*2:]))
	}
	return s
}

// expectRange fails unless got[off:off+len(want)] equals want.
func expectRange(t *testing.T, name string, got []int16, off int, want []int16) {
	t.Helper()
	if off+len(want) > len(got) {
		t.Fatalf("%s: output has %d samples, want at least %d", name, len(got), off+len(want))
	}
	for i, w := range want {
		if got[off+i] != w {
			t.Fatalf("%s: sample %d = %d, want %d", name, off+i, got[off+i], w)
		}
	}
}

func expectZero(t *testing.T, name string, got []int16, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if got[i] != 0 {
			t.Fatalf("%s: sample %d = %d, want silence", name, i, got[i])
		}
	}
}

func tone(freq float64, n int) []int16 { return audio.Tone(freq, SampleRate, n, 12000) }

const n50 = 50 * frameLen // samples in 50 packets: one second

func TestTwoLegsInOrder(t *testing.T) {
	caller, nurse := tone(440, n50), tone(1000, n50)
	tl := New(t0, Config{})
	a, b := tl.Leg(0), tl.Leg(1)
	evs := append(events(a, packets(caller, PayloadPCMU, 0x1111, 100, 5000, t0)),
		events(b, packets(nurse, PayloadPCMA, 0x2222, 7, 99999, t0))...)
	out := play(tl, evs, nil, at(time.Second))
	if len(out) != 2*n50*2 {
		t.Fatalf("output is %d bytes, want %d (2·N samples)", len(out), 2*n50*2)
	}
	if tl.Emitted() != n50 {
		t.Fatalf("Emitted = %d, want %d", tl.Emitted(), n50)
	}
	expectRange(t, "caller", channel(out, 2, 0), 0, roundTrip(caller, PayloadPCMU))
	expectRange(t, "nurse", channel(out, 2, 1), 0, roundTrip(nurse, PayloadPCMA))
	for _, c := range []struct {
		l     *Leg
		codec string
	}{{a, "PCMU"}, {b, "PCMA"}} {
		st := c.l.Stats()
		if st.Packets != 50 || st.Lost != 0 || st.Late != 0 || st.Duplicates != 0 || st.Gaps != 0 ||
			st.Reanchors != 0 || st.SSRCs != 1 || !slices.Equal(st.Codecs, []string{c.codec}) || st.JitterMS != 0 {
			t.Errorf("stats %+v", st)
		}
	}
}

// TestDelayOffset checks that a stream lands at its first packet's
// arrival, and that the window holds back exactly what it should.
func TestDelayOffset(t *testing.T) {
	caller := tone(440, n50)
	tl := New(t0, Config{Channels: 1})
	a := tl.Leg(0)
	for _, p := range packets(caller, PayloadPCMU, 1, 0, 0, at(30*time.Millisecond)) {
		a.Push(p)
	}
	out := tl.Drain(nil, at(time.Second))
	if want := 800 * 8 * 2; len(out) != want { // up to 0.8 s
		t.Fatalf("Drain: %d bytes, want %d", len(out), want)
	}
	out = tl.Close(out, at(1030*time.Millisecond))
	got := channel(out, 1, 0)
	if len(got) != 8240 {
		t.Fatalf("got %d samples, want 8240", len(got))
	}
	expectZero(t, "lead-in", got, 0, 240)
	expectRange(t, "caller", got, 240, roundTrip(caller, PayloadPCMU))
	if more := tl.Drain(nil, at(time.Hour)); len(more) != 0 {
		t.Fatalf("Drain after Close returned %d bytes", len(more))
	}
	a.Push(packets(caller, PayloadPCMU, 1, 50, 8000, at(1030*time.Millisecond))[0])
	if st := a.Stats(); st.Late != 1 || st.Packets != 50 {
		t.Fatalf("push after Close: %+v", st)
	}
}

// jittered returns ps with packet k (k > 0) delayed by a random 0..span.
func jittered(ps []Packet, span time.Duration, rng *rand.Rand) []Packet {
	ps = slices.Clone(ps)
	for k := 1; k < len(ps); k++ {
		ps[k].Arrival = ps[k].Arrival.Add(time.Duration(rng.Int64N(int64(span) + 1)))
	}
	return ps
}

func TestReorder(t *testing.T) {
	caller, nurse := tone(440, 5*n50), tone(1000, 5*n50)
	pa := packets(caller, PayloadPCMU, 1, 0, 0, t0)
	pb := packets(nurse, PayloadPCMA, 2, 0, 0, t0)

	ref := New(t0, Config{})
	want := play(ref, append(events(ref.Leg(0), pa), events(ref.Leg(1), pb)...), nil, at(5*time.Second))

	rng := rand.New(rand.NewPCG(1, 2))
	tl := New(t0, Config{})
	a, b := tl.Leg(0), tl.Leg(1)
	ja, jb := jittered(pa, 100*time.Millisecond, rng), jittered(pb, 100*time.Millisecond, rng)
	evs := append(events(a, ja), events(b, jb)...)
	got := play(tl, evs, nil, at(5*time.Second))

	reordered := 0
	for i := 1; i < len(evs); i++ {
		if evs[i].leg == evs[i-1].leg && evs[i].p.Seq < evs[i-1].p.Seq {
			reordered++
		}
	}
	if reordered < 20 {
		t.Fatalf("only %d reorderings; the test is too gentle", reordered)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("reordered output differs from in-order output")
	}
	for _, l := range []*Leg{a, b} {
		if st := l.Stats(); st.Late != 0 || st.Lost != 0 || st.Packets != 250 || st.JitterMS <= 0 || st.JitterMS > 100 {
			t.Errorf("stats %+v", st)
		}
	}
}

func TestLoss(t *testing.T) {
	caller := tone(440, n50)
	ps := packets(caller, PayloadPCMU, 1, 0, 0, t0)
	ps = append(ps[:10:10], ps[15:]...)
	tl := New(t0, Config{})
	a := tl.Leg(0)
	out := play(tl, events(a, ps), nil, at(time.Second))
	if len(out) != 2*n50*2 {
		t.Fatalf("output is %d bytes, want %d", len(out), 2*n50*2)
	}
	got, rt := channel(out, 2, 0), roundTrip(caller, PayloadPCMU)
	expectRange(t, "before", got, 0, rt[:1600])
	expectZero(t, "lost", got, 1600, 2400)
	expectRange(t, "after", got, 2400, rt[2400:])
	if st := a.Stats(); st.Lost != 5 || st.Packets != 45 || st.Gaps != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLossBurstGap(t *testing.T) {
	ps := packets(tone(440, n50), PayloadPCMU, 1, 0, 0, t0)
	ps = append(ps[:10:10], ps[25:]...) // 300 ms
	tl := New(t0, Config{})
	a := tl.Leg(0)
	play(tl, events(a, ps), nil, at(time.Second))
	if st := a.Stats(); st.Lost != 15 || st.Gaps != 1 || st.GapMS != 300 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDuplicates(t *testing.T) {
	caller := tone(440, n50)
	ps := packets(caller, PayloadPCMU, 1, 0, 0, t0)
	ref := New(t0, Config{})
	want := play(ref, events(ref.Leg(0), ps), nil, at(time.Second))

	// Each duplicate arrives right after its original, or 70 ms later,
	// after newer packets.
	for _, after := range []time.Duration{time.Millisecond, 70 * time.Millisecond} {
		var twice []Packet
		for _, p := range ps {
			d := p
			d.Arrival = d.Arrival.Add(after)
			d.Payload = bytes.Repeat([]byte{0x00}, len(p.Payload)) // must not be written
			twice = append(twice, p, d)
		}
		tl := New(t0, Config{})
		a := tl.Leg(0)
		got := play(tl, events(a, twice), nil, at(time.Second))
		if !bytes.Equal(got, want) {
			t.Fatalf("duplicates %v later: output differs", after)
		}
		if st := a.Stats(); st.Duplicates != 50 || st.Packets != 50 || st.Lost != 0 {
			t.Fatalf("duplicates %v later: stats %+v", after, st)
		}
	}
}

// TestJitterAfterReanchor checks that a re-anchoring packet does not feed
// the jitter estimate: its timestamp says nothing about network delay.
func TestJitterAfterReanchor(t *testing.T) {
	ps := packets(tone(440, 20*frameLen), PayloadPCMU, 1, 0, 0, t0)
	tl := New(t0, Config{})
	a := tl.Leg(0)
	for _, p := range ps[:10] {
		a.Push(p)
	}
	p := ps[10]
	p.Arrival = p.Arrival.Add(time.Minute) // held; the timestamp stood still
	a.Push(p)
	if st := a.Stats(); st.Reanchors != 1 || st.JitterMS > 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHold(t *testing.T) {
	const delay = 10 * time.Millisecond
	const seg = 250 // packets in 5 s
	samples := tone(440, 2*seg*frameLen)
	rt := roundTrip(samples, PayloadPCMU)
	for _, c := range []struct {
		name      string
		tsSkip    uint32 // timestamp advance over the hold
		reanchors int64
	}{
		{"timestamps continue", 3000 * frameLen, 0},
		{"timestamps stood still", 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			const ts0 = 123456
			ps := packets(samples[:seg*frameLen], PayloadPCMU, 7, 500, ts0, at(delay))
			ps = append(ps, packets(samples[seg*frameLen:], PayloadPCMU, 7, 500+seg, ts0+seg*frameLen+c.tsSkip,
				at(delay+65*time.Second))...)
			var ticks []time.Time
			for d := 5 * time.Second; d < 65*time.Second; d += time.Second {
				ticks = append(ticks, at(d))
			}
			tl := New(t0, Config{})
			a := tl.Leg(0)
			out := play(tl, events(a, ps), ticks, at(70*time.Second))
			if len(out) != 70*SampleRate*4 {
				t.Fatalf("output is %d bytes, want 70 s", len(out))
			}
			got := channel(out, 2, 0)
			off1 := int(delay / time.Duration(nsPerSample))
			expectZero(t, "lead-in", got, 0, off1)
			expectRange(t, "first 5 s", got, off1, rt[:seg*frameLen])
			second := slices.IndexFunc(got[6*SampleRate:], func(s int16) bool { return s != 0 }) + 6*SampleRate
			if d := second - 65*SampleRate; d < -160 || d > 160 {
				t.Fatalf("second part starts at sample %d, want 65 s ± 20 ms", second)
			}
			off2 := 65*SampleRate + off1
			expectZero(t, "hold", got, off1+seg*frameLen, off2)
			expectRange(t, "second 5 s", got, off2, rt[seg*frameLen:][:len(got)-off2])
			st := a.Stats()
			if st.Gaps != 1 || st.GapMS < 60000-40 || st.GapMS > 60000+40 || st.Reanchors != c.reanchors || st.Lost != 0 || st.Late != 0 {
				t.Fatalf("stats %+v", st)
			}
			if st.JitterMS > 1 {
				t.Fatalf("jitter %v ms after a hold", st.JitterMS)
			}
		})
	}
}

func TestLate(t *testing.T) {
	caller := tone(440, 2*n50)
	rt := roundTrip(caller, PayloadPCMU)
	t.Run("whole", func(t *testing.T) {
		ps := packets(caller, PayloadPCMU, 1, 0, 0, t0)
		ps[20].Arrival = ps[20].Arrival.Add(time.Second) // window is 200 ms
		tl := New(t0, Config{})
		a := tl.Leg(0)
		got := channel(play(tl, events(a, ps), nil, at(2*time.Second)), 2, 0)
		expectRange(t, "before", got, 0, rt[:3200])
		expectZero(t, "late", got, 3200, 3360)
		expectRange(t, "after", got, 3360, rt[3360:])
		if st := a.Stats(); st.Late != 1 || st.Packets != 99 || st.Lost != 0 || st.Reanchors != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("partly", func(t *testing.T) {
		ps := packets(caller, PayloadPCMU, 1, 0, 0, t0)
		ps[20].Arrival = ps[20].Arrival.Add(210 * time.Millisecond) // 10 ms = 80 samples emitted
		tl := New(t0, Config{})
		a := tl.Leg(0)
		got := channel(play(tl, events(a, ps), nil, at(2*time.Second)), 2, 0)
		expectRange(t, "before", got, 0, rt[:3200])
		expectZero(t, "late part", got, 3200, 3280)
		expectRange(t, "after", got, 3280, rt[3280:])
		if st := a.Stats(); st.Late != 1 || st.Packets != 100 || st.Lost != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("stray packet seconds late", func(t *testing.T) {
		ps := packets(caller, PayloadPCMU, 1, 0, 0, t0)
		ps[20].Arrival = ps[20].Arrival.Add(1500 * time.Millisecond) // beyond Reanchor, but old
		tl := New(t0, Config{})
		a := tl.Leg(0)
		got := channel(play(tl, events(a, ps), nil, at(2*time.Second)), 2, 0)
		expectZero(t, "late", got, 3200, 3360)
		expectRange(t, "after", got, 3360, rt[3360:])
		if st := a.Stats(); st.Late != 1 || st.Reanchors != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestPause(t *testing.T) {
	caller, nurse := tone(440, 6*n50), tone(1000, 6*n50)
	pa := packets(caller, PayloadPCMU, 1, 0, 0, t0)
	pb := packets(nurse, PayloadPCMA, 2, 0, 0, t0)
	tl := New(t0, Config{})
	a, b := tl.Leg(0), tl.Leg(1)
	var out []byte
	for k := range pa {
		switch k {
		case 100:
			a.SetPaused(true)
		case 200:
			a.SetPaused(false)
		}
		out = tl.Drain(out, pa[k].Arrival)
		a.Push(pa[k])
		b.Push(pb[k])
	}
	out = tl.Close(out, at(6*time.Second))
	got := channel(out, 2, 0)
	rt := roundTrip(caller, PayloadPCMU)
	expectRange(t, "before", got, 0, rt[:2*SampleRate])
	expectZero(t, "paused", got, 2*SampleRate, 4*SampleRate)
	expectRange(t, "after", got, 4*SampleRate, rt[4*SampleRate:])
	expectRange(t, "nurse", channel(out, 2, 1), 0, roundTrip(nurse, PayloadPCMA))
	if st := a.Stats(); st.PausedPackets != 100 || st.Packets != 200 || st.Lost != 0 || st.Gaps != 0 || st.Reanchors != 0 {
		t.Fatalf("stats %+v", st)
	}
	if st := b.Stats(); st.PausedPackets != 0 || st.Packets != 300 {
		t.Fatalf("nurse stats %+v", st)
	}
}

func TestStreamChanges(t *testing.T) {
	samples := tone(440, 2*n50)
	rt := roundTrip(samples, PayloadPCMU)
	run := func(t *testing.T, ps []Packet) ([]int16, Stats) {
		t.Helper()
		tl := New(t0, Config{Channels: 1})
		a := tl.Leg(0)
		return channel(play(tl, events(a, ps), nil, at(2*time.Second)), 1, 0), a.Stats()
	}
	t.Run("ssrc change", func(t *testing.T) {
		ps := packets(samples[:n50], PayloadPCMU, 0xAAAA, 100, 1000, t0)
		ps = append(ps, packets(samples[n50:], PayloadPCMU, 0xBBBB, 40000, 3_000_000_000, at(time.Second))...)
		got, st := run(t, ps)
		expectRange(t, "output", got, 0, rt)
		if st.SSRCs != 2 || st.Reanchors != 0 || st.Lost != 0 || st.Packets != 100 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("seq wrap", func(t *testing.T) {
		ps := packets(samples, PayloadPCMU, 1, 65510, 0, t0)
		got, st := run(t, ps)
		expectRange(t, "output", got, 0, rt)
		if st.Lost != 0 || st.Duplicates != 0 || st.Packets != 100 {
			t.Fatalf("stats %+v", st)
		}
		// Lose 65535 and 0: loss is counted across the wrap.
		ps = slices.Delete(ps, 25, 27)
		if ps[24].Seq != 65534 || ps[25].Seq != 1 {
			t.Fatal("bad test setup")
		}
		if _, st := run(t, ps); st.Lost != 2 {
			t.Fatalf("lost %d across the wrap, want 2", st.Lost)
		}
	})
	t.Run("timestamp wrap", func(t *testing.T) {
		ps := packets(samples, PayloadPCMU, 1, 0, math.MaxUint32-10*frameLen-37, t0)
		got, st := run(t, ps)
		expectRange(t, "output", got, 0, rt)
		if st.Reanchors != 0 || st.Late != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("ignored payload types", func(t *testing.T) {
		ps := packets(samples, PayloadPCMU, 1, 0, 0, t0)
		for k := 20; k < 25; k++ { // a DTMF digit, sharing the sequence space
			ps[k].PayloadType, ps[k].Payload, ps[k].Timestamp = 101, []byte{5, 0x8a, 0, 160}, ps[20].Timestamp
		}
		ps[30].PayloadType, ps[30].Payload = 13, []byte{0x40} // comfort noise
		got, st := run(t, ps)
		expectRange(t, "before", got, 0, rt[:20*frameLen])
		expectZero(t, "dtmf", got, 20*frameLen, 25*frameLen)
		expectRange(t, "between", got, 25*frameLen, rt[25*frameLen:30*frameLen])
		expectZero(t, "cn", got, 30*frameLen, 31*frameLen)
		expectRange(t, "after", got, 31*frameLen, rt[31*frameLen:])
		if st.Ignored != 6 || st.Lost != 0 || st.Packets != 94 || !slices.Equal(st.Codecs, []string{"PCMU"}) {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("sequence restart", func(t *testing.T) {
		ps := packets(samples[:n50], PayloadPCMU, 1, 100, 0, t0)
		ps = append(ps, packets(samples[n50:], PayloadPCMU, 1, 30000, n50, at(time.Second))...)
		got, st := run(t, ps)
		expectRange(t, "output", got, 0, rt)
		if st.Lost != 0 || st.Reanchors != 0 || st.SSRCs != 1 || st.Packets != 100 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestMixedStreamOnBothChannels(t *testing.T) {
	mixed := tone(700, n50)
	tl := New(t0, Config{})
	l := tl.Leg(0, 1, 1)
	out := play(tl, events(l, packets(mixed, PayloadPCMA, 1, 0, 0, t0)), nil, at(time.Second))
	rt := roundTrip(mixed, PayloadPCMA)
	expectRange(t, "channel 0", channel(out, 2, 0), 0, rt)
	expectRange(t, "channel 1", channel(out, 2, 1), 0, rt)
}

func TestSaturation(t *testing.T) {
	fill := func(vs ...int16) []int16 {
		var s []int16
		for _, v := range vs {
			s = append(s, slices.Repeat([]int16{v}, 10*frameLen)...)
		}
		return s
	}
	sa := fill(math.MaxInt16, math.MinInt16, 1000, -1000)
	sb := fill(math.MaxInt16, math.MinInt16, 2000, 30000)
	tl := New(t0, Config{})
	a, b, c := tl.Leg(0), tl.Leg(0), tl.Leg(1)
	evs := append(events(a, packets(sa, PayloadPCMU, 1, 0, 0, t0)), events(b, packets(sb, PayloadPCMU, 2, 0, 0, t0))...)
	evs = append(evs, events(c, packets(sa, PayloadPCMU, 3, 0, 0, t0))...)
	out := play(tl, evs, nil, at(800*time.Millisecond))
	ra, rb := roundTrip(sa, PayloadPCMU), roundTrip(sb, PayloadPCMU)
	want := make([]int16, len(sa))
	for i := range want {
		want[i] = int16(max(math.MinInt16, min(math.MaxInt16, int(ra[i])+int(rb[i]))))
	}
	if want[0] != math.MaxInt16 || want[10*frameLen] != math.MinInt16 {
		t.Fatal("bad test setup: sums do not saturate")
	}
	expectRange(t, "summed", channel(out, 2, 0), 0, want)
	expectRange(t, "alone", channel(out, 2, 1), 0, ra)
}

func TestDrainSchedule(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	caller, nurse := tone(440, 10*n50), tone(1000, 10*n50)
	build := func(tl *Timeline) []event {
		r := rand.New(rand.NewPCG(5, 6)) // same jitter for both runs
		pa := jittered(packets(caller, PayloadPCMU, 1, 0, 0, t0), 150*time.Millisecond, r)
		pb := jittered(packets(nurse, PayloadPCMA, 2, 0, 0, at(5*time.Millisecond)), 150*time.Millisecond, r)
		pa = append(pa[:100:100], pa[140:]...) // a gap in the caller
		evs := append(events(tl.Leg(0), pa), events(tl.Leg(1), pb)...)
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].p.Arrival.Before(evs[j].p.Arrival) })
		return evs
	}
	end := at(10*time.Second + 100*time.Millisecond)

	ref := New(t0, Config{})
	var want []byte
	for _, e := range build(ref) {
		e.leg.Push(e.p)
	}
	want = ref.Close(want, end)

	for run := range 20 {
		tl := New(t0, Config{})
		var got []byte
		last := t0
		for _, e := range build(tl) {
			// Drain at random moments between the previous arrival and this one,
			// sometimes several times, sometimes not at all, sometimes with a
			// now earlier than before.
			for rng.IntN(3) == 0 {
				d := time.Duration(rng.Int64N(int64(e.p.Arrival.Sub(last)) + 1))
				got = tl.Drain(got, last.Add(d))
			}
			if rng.IntN(10) == 0 {
				n := len(got)
				if got = tl.Drain(got, last.Add(-time.Second)); len(got) != n {
					t.Fatal("Drain going back in time emitted audio")
				}
			}
			last = e.p.Arrival
			e.leg.Push(e.p)
		}
		got = tl.Close(got, end)
		if !bytes.Equal(got, want) {
			t.Fatalf("run %d: drained output differs from one Close (%d vs %d bytes)", run, len(got), len(want))
		}
	}
}

func TestConcurrent(t *testing.T) {
	caller, nurse := tone(440, 10*n50), tone(1000, 10*n50)
	tl := New(t0, Config{})
	legs := []*Leg{tl.Leg(0), tl.Leg(1)}
	streams := [][]Packet{
		packets(caller, PayloadPCMU, 1, 0, 0, t0),
		packets(nurse, PayloadPCMA, 2, 0, 0, t0),
	}
	var progress [2]atomic.Int64 // arrival offset of the packet each pusher pushed last
	var wg sync.WaitGroup
	for i := range legs {
		wg.Go(func() {
			for _, p := range streams[i] {
				legs[i].Push(p)
				progress[i].Store(int64(p.Arrival.Sub(t0)))
				if p.Seq%7 == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	done := make(chan struct{})
	var out []byte
	go func() {
		defer close(done)
		for {
			// Never drain past what both pushers have reached, as a real
			// clock would not; then no packet is late and the output is
			// deterministic.
			now := min(progress[0].Load(), progress[1].Load())
			out = tl.Drain(out, at(time.Duration(now)))
			legs[0].Stats()
			if now >= int64(9980*time.Millisecond) {
				return
			}
			runtime.Gosched()
		}
	}()
	wg.Wait()
	<-done
	out = tl.Close(out, at(10*time.Second))
	expectRange(t, "caller", channel(out, 2, 0), 0, roundTrip(caller, PayloadPCMU))
	expectRange(t, "nurse", channel(out, 2, 1), 0, roundTrip(nurse, PayloadPCMA))
	for _, l := range legs {
		if st := l.Stats(); st.Late != 0 || st.Packets != 500 {
			t.Fatalf("stats %+v", st)
		}
	}
}

func TestFarAheadTimestamp(t *testing.T) {
	const hour = 3600 * SampleRate
	samples := tone(440, 4*n50)
	rt := roundTrip(samples, PayloadPCMU)
	for _, c := range []struct {
		name      string
		cfg       Config
		persist   bool // the jump persists (sender clock jumped) or is one bad packet
		reanchors int64
	}{
		{"one packet", Config{}, false, 2},
		{"clock jump", Config{}, true, 1},
		{"clock jump beyond MaxAhead", Config{Reanchor: 2 * time.Hour}, true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps := packets(samples, PayloadPCMU, 1, 0, 0, t0)
			for k := 50; k < len(ps); k++ {
				if k == 50 || c.persist {
					ps[k].Timestamp += hour
				}
			}
			tl := New(t0, c.cfg)
			a := tl.Leg(0)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			var out []byte
			maxFrames := 0
			for _, p := range ps {
				out = tl.Drain(out, p.Arrival)
				a.Push(p)
				maxFrames = max(maxFrames, len(a.frames))
			}
			out = tl.Close(out, at(4*time.Second))
			runtime.ReadMemStats(&ms1)
			if maxFrames > 16 {
				t.Errorf("leg held %d frames", maxFrames)
			}
			if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 8<<20 {
				t.Errorf("allocated %d bytes", alloc)
			}
			expectRange(t, "output", channel(out, 2, 0), 0, rt)
			if st := a.Stats(); st.Reanchors != c.reanchors || st.Late != 0 || st.Packets != 200 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestStatsJSON(t *testing.T) {
	tl := New(t0, Config{})
	a := tl.Leg(0)
	a.Push(packets(tone(440, frameLen), PayloadPCMA, 0xDEADBEEF, 1, 2, t0)[0])
	b, err := json.Marshal(a.Stats())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"packets", "lost", "late", "duplicates", "paused_packets", "ignored", "jitter_ms",
		"gaps", "gap_ms", "reanchors", "ssrcs", "codecs"} {
		if !strings.Contains(string(b), `"`+key+`":`) {
			t.Errorf("%s lacks %q", b, key)
		}
	}
	if strings.Contains(string(b), "3735928559") { // the SSRC
		t.Errorf("%s leaks the SSRC", b)
	}
}

func TestConfigPanics(t *testing.T) {
	for _, f := range []func(){
		func() { New(t0, Config{Channels: 9}) },
		func() { New(t0, Config{Window: -1}) },
		func() { New(t0, Config{}).Leg() },
		func() { New(t0, Config{}).Leg(2) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}
