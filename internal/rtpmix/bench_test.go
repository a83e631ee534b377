package rtpmix

import (
	"testing"
	"time"

	"callvault/internal/audio"
)

// benchCall is one minute of a two-leg call: 3000 μ-law packets per leg,
// in arrival order, alternating legs.
func benchCall() [2][]Packet {
	const n = 3000
	return [2][]Packet{
		packets(tone(440, n*frameLen), PayloadPCMU, 1, 0, 0, t0),
		packets(tone(1000, n*frameLen), PayloadPCMU, 2, 0, 0, t0.Add(3*time.Millisecond)),
	}
}

// decodedBytes is the size of the PCM the packets decode to.
func decodedBytes(call [2][]Packet) (bytes int64, count int) {
	for _, ps := range call {
		for _, p := range ps {
			bytes += 2 * int64(len(p.Payload))
		}
		count += len(ps)
	}
	return bytes, count
}

// BenchmarkTimeline pushes a one-minute two-leg call and drains every
// 20 ms, as a recorder would. Compare its ns/packet with
// BenchmarkDecodeReference.
func BenchmarkTimeline(b *testing.B) {
	call := benchCall()
	size, n := decodedBytes(call)
	b.SetBytes(size)
	b.ReportAllocs()
	out := make([]byte, 0, 4096)
	for b.Loop() {
		tl := New(t0, Config{})
		legs := [2]*Leg{tl.Leg(0), tl.Leg(1)}
		for k := range call[0] {
			out = tl.Drain(out[:0], call[0][k].Arrival)
			legs[0].Push(call[0][k])
			legs[1].Push(call[1][k])
		}
		out = tl.Close(out[:0], t0.Add(time.Minute))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
}

// BenchmarkDecodeReference only decodes the same payloads with
// audio.DecodeMuLaw into a buffer: the floor for BenchmarkTimeline.
func BenchmarkDecodeReference(b *testing.B) {
	call := benchCall()
	size, n := decodedBytes(call)
	b.SetBytes(size)
	b.ReportAllocs()
	buf := make([]int16, frameLen)
	var sink int16
	for b.Loop() {
		for k := range call[0] {
			for _, ps := range call {
				for i, c := range ps[k].Payload {
					buf[i] = audio.DecodeMuLaw(c)
				}
				sink += buf[k%frameLen]
			}
		}
	}
	_ = sink
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
}
